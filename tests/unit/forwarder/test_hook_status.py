"""How a Hook's status is derived from its audit records: khook's ``activeEvents`` rules and the
``Ready`` condition. The API server side is tested in
tests/integration/forwarder/test_hook_status_real_api.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from khook_core.errors import Problem
from khook_core.forwarder.hook_events import FiringEvents
from khook_core.forwarder.hook_status import (
    HookActivity,
    Verdict,
    active_events,
    ready_condition,
    render,
    same_status,
)
from khook_core.state.base import DedupKey, Firing

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
OBJ: dict[str, Any] = {"metadata": {"generation": 3}}


def firing(outcome: str, at: datetime, pod: str = "web-1", error: str = "") -> Firing:
    return Firing(
        DedupKey(f"k-{pod}"),
        "shop/web",
        f"e-{at}",
        "pod-restart",
        "kubernetes",
        f"shop/Pod/{pod}",
        "kagent/k8s-agent",
        "h",
        outcome,
        at,
        task_id="t",
        error=error,
    )


def test_an_entry_fires_for_ten_minutes_then_is_resolved_and_gone_at_fifteen():
    activity = HookActivity()
    activity.fold(firing("dispatched", T0))

    [entry] = active_events(activity, T0 + timedelta(minutes=9, seconds=59))
    assert entry == {
        "eventType": "pod-restart",
        "resourceName": "web-1",
        "status": "firing",
        "firstSeen": "2026-01-01T12:00:00Z",
        "lastSeen": "2026-01-01T12:00:00Z",
    }
    [entry] = active_events(activity, T0 + timedelta(minutes=10))
    assert entry["status"] == "resolved"
    assert active_events(activity, T0 + timedelta(minutes=15)) == []


def test_first_seen_is_kept_while_listed_and_records_fold_idempotently():
    activity = HookActivity()
    records = [
        firing("dispatched", T0),
        firing("failed:transient", T0 + timedelta(minutes=12)),
        firing("duplicate", T0 + timedelta(minutes=13)),
    ]
    for record in records + records[::-1]:
        activity.fold(record)

    [entry] = active_events(activity, T0 + timedelta(minutes=13))
    assert (entry["firstSeen"], entry["lastSeen"], entry["status"]) == (
        "2026-01-01T12:00:00Z",
        "2026-01-01T12:12:00Z",
        "firing",
    )


def test_a_restarted_forwarder_keeps_first_seen_from_the_status_the_hook_holds():
    activity = HookActivity()
    activity.fold(firing("dispatched", T0 + timedelta(minutes=5)))
    activity.seed(
        {
            "activeEvents": [
                {
                    "eventType": "pod-restart",
                    "resourceName": "web-1",
                    "firstSeen": "2026-01-01T11:58:00Z",
                    "lastSeen": "2026-01-01T12:00:00Z",
                    "status": "firing",
                }
            ]
        },
        T0 + timedelta(minutes=5),
    )

    [entry] = active_events(activity, T0 + timedelta(minutes=5))
    assert entry["firstSeen"] == "2026-01-01T11:58:00Z"


def test_newest_first_so_last_fired_reads_the_first_entry():
    activity = HookActivity()
    activity.fold(firing("dispatched", T0, pod="a"))
    activity.fold(firing("dispatched", T0 + timedelta(seconds=5), pod="b"))

    assert [e["resourceName"] for e in active_events(activity, T0 + timedelta(seconds=6))] == [
        "b",
        "a",
    ]


def test_ready_names_the_invalid_field_or_the_unreachable_agent():
    invalid = Verdict(
        (Problem("Hook shop/web", None, "spec.eventConfigurations[0].prompt: unknown placeholder"),)
    )
    condition = ready_condition(invalid, HookActivity(), OBJ, T0)
    assert (condition["status"], condition["reason"]) == ("False", "InvalidConfiguration")
    assert "spec.eventConfigurations[0].prompt" in condition["message"]
    assert condition["observedGeneration"] == 3

    activity = HookActivity()
    activity.fold(firing("failed:circuit-open", T0, error="circuit open"))
    condition = ready_condition(Verdict(), activity, OBJ, T0)
    assert (condition["status"], condition["reason"]) == ("False", "AgentUnreachable")
    assert "kagent/k8s-agent" in condition["message"]
    assert activity.events == {}  # an open circuit sent nothing: no active event

    activity.fold(firing("dispatched", T0 + timedelta(seconds=1)))
    condition = ready_condition(Verdict(), activity, OBJ, T0)
    assert (condition["status"], condition["reason"]) == ("True", "HookConfigured")


def test_the_transition_time_moves_only_when_the_status_changes():
    earlier = render(Verdict(), HookActivity(), OBJ, T0)
    held = {**OBJ, "status": earlier}

    later = render(Verdict(), HookActivity(), held, T0 + timedelta(hours=1))
    assert later["conditions"][0]["lastTransitionTime"] == "2026-01-01T12:00:00Z"
    assert same_status(earlier, later)  # only lastUpdated differs: no write
    flipped = render(
        Verdict((Problem("f", None, "bad"),)), HookActivity(), held, T0 + timedelta(hours=1)
    )
    assert flipped["conditions"][0]["lastTransitionTime"] == "2026-01-01T13:00:00Z"
    assert not same_status(earlier, flipped)


def test_event_writes_are_rate_limited_per_hook():
    clock = [0.0]
    events = FiringEvents(None, monotonic=lambda: clock[0], burst=2, refill=5.0)  # type: ignore[arg-type]

    assert [events._take("shop/web") for _ in range(3)] == [True, True, False]
    assert events._take("shop/other")  # each Hook its own bucket
    clock[0] = 5.0
    assert [events._take("shop/web") for _ in range(2)] == [True, False]
