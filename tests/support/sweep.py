"""Driving functions/sweep from a test: its Pub/Sub tick, and ticking until a task ends."""

from __future__ import annotations

import base64
import time
from typing import Any

from khook_core.runtime import get_runtime
from khook_core.state.base import Firing

SWEEP_TOPIC = "/projects/p1/topics/khook-sweep"


def tick(n: int) -> dict[str, Any]:
    """The push body of the scheduler's ``n``-th tick (an empty message)."""
    return {
        "message": {"data": base64.b64encode(b"{}").decode(), "messageId": f"t{n}"},
        "subscription": "projects/p1/subscriptions/khook-sweep-push",
    }


def until_task_ends(sweep: Any, hook: str, *, ticks: int = 200) -> Firing:
    """Tick ``sweep`` (a test client of functions/sweep) until the audit trail records the end
    of ``hook``'s one followed task (outcome ``task:<state>``); that record."""
    for n in range(ticks):
        assert sweep.post(SWEEP_TOPIC, json=tick(n)).status_code == 200
        ended = [f for f in get_runtime().store.firings(hook=hook) if f.outcome.startswith("task:")]
        if ended:
            [end] = ended
            return end
        time.sleep(0.02)
    raise AssertionError("the task did not end")
