"""Driving functions/sweep from a test: its Pub/Sub tick, ticking until something is done, and
ticking until a task ends."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

from khook_core.runtime import get_runtime
from khook_core.state.base import Firing

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
