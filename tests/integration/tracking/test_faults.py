"""Tracking under faults: no task is left unfollowed past its deadline, no end recorded twice.

functions/kubernetes and functions/sweep (the real functions-framework apps), one SQLite state
file, and the a2a-sdk test agent behind the TCP fault proxy: the agent goes silent (a
partition, connections accepted and never answered), a tick dies after leasing its tasks, the
state file is locked by another connection.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from khook_core.runtime import get_runtime
from tests.support.a2a_agent import TestAgent
from tests.support.fault_proxy import FaultProxy
from tests.support.kube_api import FakeKubeApi
from tests.support.kubernetes_push import TOPIC, push, restart_hook_env
from tests.support.sweep import post_tick, tick_until

HOOK = "shop/shop-restarts"
MAX_TICKS = 300


@pytest.fixture
def proxy(a2a_agent: TestAgent) -> Iterator[FaultProxy]:
    host, _, port = a2a_agent.base_url.removeprefix("http://").partition(":")
    with FaultProxy((host, int(port))) as proxy:
        yield proxy


@pytest.fixture
def functions(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    a2a_agent: TestAgent,
    proxy: FaultProxy,
    function_client: Callable[[str], Any],
) -> Iterator[tuple[Any, Any]]:
    restart_hook_env(
        monkeypatch,
        tmp_path,
        a2a_agent,
        KHOOK_STATE=f"sqlite:{tmp_path / 'state.db'}",
        KAGENT_API_TIMEOUT="0.3",
        KHOOK_DISPATCH_RETRIES="0",
        KHOOK_INVOCATION_BUDGET="3",
        KHOOK_TRACK_FIRST_CHECK="0",
        KHOOK_TRACK_BACKOFF="0.01",
        KHOOK_TRACK_MAX_BACKOFF="0.02",
    )
    monkeypatch.setenv("KAGENT_API_URL", f"http://{proxy.address}")
    a2a_agent.hold = threading.Event()
    yield function_client("kubernetes"), function_client("sweep")
    a2a_agent.hold.set()
    get_runtime().close()


def ends() -> list[tuple[str, str]]:
    return [
        (f.task_id, f.outcome)
        for f in reversed(get_runtime().store.firings(hook=HOOK))
        if f.outcome.startswith("task:")
    ]


def dispatch(kubernetes: Any, name: str = "web-0") -> str:
    event = FakeKubeApi().create(namespace="shop", object_name=name)
    assert kubernetes.post(TOPIC, json=push(event, f"m-{name}", 1)).status_code == 200
    newest = get_runtime().store.firings(hook=HOOK, limit=1)[0]
    assert newest.outcome == "dispatched"
    return newest.task_id


def set_deadline(seconds: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_runtime().settings
    monkeypatch.setitem(settings._environ, "KHOOK_TRACK_DEADLINE", seconds)
    settings._groups.clear()


def test_an_agent_silent_past_the_deadline_leaves_its_task_timed_out_once(
    functions: tuple[Any, Any], proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubernetes, sweep = functions
    set_deadline("2", monkeypatch)
    task_id = dispatch(kubernetes)
    proxy.cut(600)  # the agent is gone for far longer than the deadline

    last = tick_until(sweep, lambda: bool(ends()), ticks=MAX_TICKS)
    for n in range(3):
        post_tick(sweep, last + 1 + n)

    assert ends() == [(task_id, "task:timed-out")]


def test_an_agent_back_before_the_deadline_gets_its_task_completed_once(
    functions: tuple[Any, Any], proxy: FaultProxy, a2a_agent: TestAgent
) -> None:
    kubernetes, sweep = functions
    task_id = dispatch(kubernetes)
    proxy.cut(1.5)
    for n in range(3):  # ticks while the agent is silent: nothing ends, nothing is lost
        post_tick(sweep, n)
    assert ends() == []
    assert a2a_agent.hold is not None
    a2a_agent.hold.set()

    last = tick_until(sweep, lambda: bool(ends()), first=10, ticks=MAX_TICKS)
    for n in range(3):
        post_tick(sweep, last + 1 + n)

    assert ends() == [(task_id, "task:completed")]


def test_a_tick_that_dies_after_leasing_its_tasks_leaves_them_followed_later(
    functions: tuple[Any, Any], a2a_agent: TestAgent
) -> None:
    kubernetes, sweep = functions
    task_ids = {dispatch(kubernetes, f"web-{n}") for n in range(3)}
    runtime = get_runtime()
    leased = runtime.task_store().due_tasks(
        now=runtime.clock(), limit=10, lease=timedelta(seconds=1)
    )  # ... and the tick that leased them is killed here
    assert {t.task_id for t in leased} == task_ids
    assert a2a_agent.hold is not None
    a2a_agent.hold.set()

    last = tick_until(sweep, lambda: len(ends()) == 3, ticks=MAX_TICKS)
    for n in range(3):
        post_tick(sweep, last + 1 + n)

    assert sorted(ends()) == sorted((t, "task:completed") for t in task_ids)


def test_a_locked_state_file_skips_the_tick_and_the_next_one_catches_up(
    functions: tuple[Any, Any], a2a_agent: TestAgent, tmp_path: Path
) -> None:
    kubernetes, sweep = functions
    task_id = dispatch(kubernetes)
    assert a2a_agent.hold is not None
    a2a_agent.hold.set()
    blocker = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        post_tick(sweep, 0)  # the store is unavailable: acknowledged, nothing recorded
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert ends() == []

    last = tick_until(sweep, lambda: bool(ends()), first=1, ticks=MAX_TICKS)
    for n in range(3):
        post_tick(sweep, last + 1 + n)

    assert ends() == [(task_id, "task:completed")]
