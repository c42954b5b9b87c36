"""Driving functions/sweep from a test: its Pub/Sub tick, ticking until something is done,
ticking until a task ends, and a webhook function whose tasks the sweep follows."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from khook_core.runtime import get_runtime, reset_runtime
from khook_core.state.base import Firing
from tests.support.configdir import make_config
from tests.support.source_functions import _create_app
from tests.support.sources import HMAC_SECRET

SWEEP_TOPIC = "/projects/p1/topics/khook-sweep"


def tick(n: int) -> dict[str, Any]:
    """The push body of the scheduler's ``n``-th tick (an empty message)."""
    return {
        "message": {"data": base64.b64encode(b"{}").decode(), "messageId": f"tick-{n}"},
        "subscription": "projects/p1/subscriptions/khook-sweep-push",
    }


def post_tick(sweep: Any, n: int) -> None:
    """Push the ``n``-th tick to ``sweep`` (a test client of functions/sweep); it must be
    acknowledged."""
    assert sweep.post(SWEEP_TOPIC, json=tick(n)).status_code == 200


def tick_until(
    sweep: Any,
    done: Callable[[], bool],
    *,
    first: int = 0,
    ticks: int = 200,
    pause: float = 0.02,
) -> int:
    """Tick ``sweep`` (numbered from ``first``, ``pause`` seconds apart) until ``done()``; the
    number of the tick after which it was."""
    for n in range(first, first + ticks):
        post_tick(sweep, n)
        if done():
            return n
        time.sleep(pause)
    raise AssertionError(f"not done after {ticks} ticks")


def until_task_ends(sweep: Any, hook: str, *, ticks: int = 200) -> Firing:
    """Tick ``sweep`` until the audit trail records the end of ``hook``'s one followed task
    (outcome ``task:<state>``); that record."""

    def ended() -> list[Firing]:
        return [f for f in get_runtime().store.firings(hook=hook) if f.outcome.startswith("task:")]

    tick_until(sweep, lambda: bool(ended()), ticks=ticks)
    [end] = ended()
    return end


@contextmanager
def tracked_webhook(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    hooks: str,
    agent_url: str,
    function_client: Callable[[str], Any],
    **env: str,
) -> Iterator[tuple[Any, Any]]:
    """Test clients of functions/webhook (HMAC secret ``HMAC_SECRET``) and functions/sweep over
    one SQLite state, ``hooks`` their configuration, tasks followed from the first tick; ``env``
    adds settings. The runtime is closed on the way out."""
    config = make_config(tmp_path, hooks, plugins="plugins: []\n")
    settings = {
        "KHOOK_CONFIG_DIR": str(config),
        "KAGENT_API_URL": agent_url,
        "KHOOK_STATE": f"sqlite:{tmp_path / 'state.db'}",
        "KHOOK_TRACK_FIRST_CHECK": "0",
        "KHOOK_DISPATCH_BACKOFF": "0.01",
        "KHOOK_WEBHOOK_HMAC_SECRET": HMAC_SECRET,
        **env,
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    reset_runtime()
    try:
        yield _create_app("webhook", monkeypatch).test_client(), function_client("sweep")
    finally:
        get_runtime().close()
