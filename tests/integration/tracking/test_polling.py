"""Every dispatched task followed to its end by polling, on both wires.

functions/kubernetes and functions/sweep through the real functions-framework apps, one SQLite
state file, and the a2a-sdk test agent, whose runs stay ``working`` after the send was answered
until the test lets them finish. Each sweep tick asks the agent about the due tasks
(``GetTask`` on A2A 1.0, ``tasks/get`` on 0.3); the task's end is recorded once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from khook_core.runtime import get_runtime
from khook_core.state.base import Firing
from tests.support.a2a_agent import TestAgent
from tests.support.kube_api import FakeKubeApi
from tests.support.kubernetes_push import TOPIC, push, restart_hook_env
from tests.support.sweep import post_tick, tick_until

HOOK = "shop/shop-restarts"
MAX_TICKS = 200
FINDING = "Root cause: the container ran out of memory (limit 128Mi); raise it to 256Mi."
GET = {"1.0": "GetTask", "0.3": "tasks/get"}
CANCEL = {"1.0": "CancelTask", "0.3": "tasks/cancel"}


@pytest.fixture(params=["1.0", "0.3"])
def wire(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def functions(
    wire: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    a2a_agent: TestAgent,
    function_client: Callable[[str], Any],
) -> Iterator[tuple[Any, Any]]:
    restart_hook_env(
        monkeypatch,
        tmp_path,
        a2a_agent,
        KHOOK_STATE=f"sqlite:{tmp_path / 'state.db'}",
        KHOOK_A2A_VERSION=wire,
        KHOOK_TRACK_FIRST_CHECK="0",
        KHOOK_TRACK_BACKOFF="0.01",
        KHOOK_TRACK_MAX_BACKOFF="0.02",
    )
    a2a_agent.hold = threading.Event()
    yield function_client("kubernetes"), function_client("sweep")
    a2a_agent.hold.set()
    get_runtime().close()


def audit() -> list[Firing]:
    return list(reversed(get_runtime().store.firings(hook=HOOK)))


def methods(agent: TestAgent) -> list[str]:
    return [str(r.json().get("method")) for r in agent.rpc_requests()]


def ended(outcome: str) -> Callable[[], bool]:
    return lambda: any(f.outcome == outcome for f in audit())


def test_a_task_that_completes_later_reaches_completed_with_the_agents_text(
    functions: tuple[Any, Any], a2a_agent: TestAgent, wire: str
) -> None:
    kubernetes, sweep = functions
    a2a_agent.answer = FINDING
    a2a_agent.usage = {"promptTokenCount": 1200, "candidatesTokenCount": 80}
    event = FakeKubeApi().create(namespace="shop", object_name="web-0")
    assert kubernetes.post(TOPIC, json=push(event, "4711", 1)).status_code == 200
    [dispatched] = audit()
    assert (dispatched.outcome, dispatched.task_state) == ("dispatched", "submitted")

    tick_until(sweep, lambda: GET[wire] in methods(a2a_agent))  # asked while still working
    task = get_runtime().task_store().read_task(ref=f"{a2a_agent.url} {dispatched.task_id}")
    assert task is not None
    assert task.state == "working"
    assert [f.outcome for f in audit()] == ["dispatched"]  # working is not a record

    assert a2a_agent.hold is not None
    a2a_agent.hold.set()
    tick_until(sweep, ended("task:completed"), first=1, ticks=MAX_TICKS)
    for n in range(3):  # later ticks find nothing due and ask nothing
        post_tick(sweep, 1000 + n)

    records = audit()
    print(f"\nwire {wire}: audit {[(f.outcome, f.task_state) for f in records]}")
    assert [f.outcome for f in records] == ["dispatched", "task:completed"]
    done = records[-1]
    assert (done.task_id, done.task_state, done.finding) == (
        dispatched.task_id,
        "completed",
        FINDING,
    )
    assert done.finding_chars == str(len(FINDING))
    assert done.tokens == "1280"
    assert done.finished_at
    asked = methods(a2a_agent)
    assert set(asked) <= {"SendMessage", "message/send", GET[wire]}
    assert GET["0.3" if wire == "1.0" else "1.0"] not in asked


def test_a_failed_task_is_recorded_failed_with_its_text(
    functions: tuple[Any, Any], a2a_agent: TestAgent
) -> None:
    kubernetes, sweep = functions
    a2a_agent.answer = "kubectl: permission denied"
    a2a_agent.final_state = "failed"
    assert a2a_agent.hold is not None
    a2a_agent.hold.set()
    event = FakeKubeApi().create(namespace="shop", object_name="web-0")
    assert kubernetes.post(TOPIC, json=push(event, "4711", 1)).status_code == 200

    tick_until(sweep, ended("task:failed"), first=1, ticks=MAX_TICKS)

    done = audit()[-1]
    assert (done.task_state, done.finding) == ("failed", "kubectl: permission denied")


def test_a_task_still_open_at_its_deadline_is_timed_out_and_cancelled_when_asked(
    functions: tuple[Any, Any], a2a_agent: TestAgent, monkeypatch: pytest.MonkeyPatch, wire: str
) -> None:
    kubernetes, sweep = functions
    settings = get_runtime().settings  # the one the sweep reads its tracking settings from
    monkeypatch.setitem(settings._environ, "KHOOK_TRACK_DEADLINE", "0.3")
    monkeypatch.setitem(settings._environ, "KHOOK_TRACK_CANCEL", "true")
    settings._groups.clear()
    event = FakeKubeApi().create(namespace="shop", object_name="web-0")
    assert kubernetes.post(TOPIC, json=push(event, "4711", 1)).status_code == 200

    tick_until(sweep, ended("task:timed-out"), first=1, ticks=MAX_TICKS)

    records = audit()
    assert [f.outcome for f in records] == ["dispatched", "task:timed-out"]
    assert records[-1].task_state == "timed-out"
    assert CANCEL[wire] in methods(a2a_agent)
    assert a2a_agent.cancels == [records[0].task_id]


def test_concurrent_ticks_record_one_end_for_each_task(
    functions: tuple[Any, Any], a2a_agent: TestAgent
) -> None:
    kubernetes, _ = functions
    for n in range(4):
        event = FakeKubeApi().create(namespace="shop", object_name=f"web-{n}")
        assert kubernetes.post(TOPIC, json=push(event, f"47{n}", 1)).status_code == 200
    assert a2a_agent.hold is not None
    a2a_agent.hold.set()
    runtime = get_runtime()
    from khook_core.tracking import tracker

    def ticks() -> None:
        deadline = time.monotonic() + 60  # a bound, not a budget: a loaded machine ticks slowly
        while time.monotonic() < deadline:
            tracker.tick(runtime)
            if sum(f.outcome == "task:completed" for f in audit()) == 4:
                return
            time.sleep(0.02)

    threads = [threading.Thread(target=ticks) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    ends = [f.task_id for f in audit() if f.outcome.startswith("task:")]
    assert len(ends) == len(set(ends)) == 4
