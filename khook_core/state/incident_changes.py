"""The incident rules, as pure functions of a workload's current incident: every backend reads
the current incident, applies one of these and writes the result in one atomic step, so the
three backends cannot disagree on what joining, resolving or a follow-up means.

Incidents travel as JSON objects (``to_json``/``from_json``): one text column in SQLite, one
field in Firestore, the same shape in both.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from khook_core.state.base import Correlation, Incident

MAX_INCIDENT_MEMBERS: Final = 200
"""Members remembered for redelivery checks and resolution; an incident in a long storm keeps
counting ``events`` past it without growing its record (Firestore's 1 MiB document limit)."""
MAX_PENDING_EVIDENCE: Final = 50
"""Evidence lines held for the next follow-up; a follow-up summarises, it never floods."""

FIRING: Final = "firing"
RESOLVED: Final = "resolved"
EVENT: Final = "event"


def new_incident_id() -> str:
    """Random, not derived: a workload has many incidents over time, one per quiet period."""
    return f"inc-{uuid.uuid4().hex[:24]}"


def correlate(
    current: Incident | None,
    *,
    workload: str,
    member: str,
    window: timedelta,
    now: datetime,
    hook: str,
    agent: str,
    resolvable: bool,
    evidence: str,
    join_only: bool = False,
) -> tuple[Incident, Incident | None, Correlation] | None:
    """(the workload's incident after the event, a stale incident it closed or None, result);
    None when ``join_only`` and there is nothing to join."""
    state = FIRING if resolvable else EVENT
    if current is not None and current.open and now - current.last_event_at <= current.window:
        if member in current.members:
            return current, None, Correlation(current, opened=False, duplicate=True)
        members = dict(current.members)
        if len(members) < MAX_INCIDENT_MEMBERS:
            members[member] = state
        pending = (
            (*current.pending, evidence)[-MAX_PENDING_EVIDENCE:] if evidence else (current.pending)
        )
        joined = dataclasses.replace(
            current,
            last_event_at=max(current.last_event_at, now),
            events=current.events + 1,
            members=members,
            pending=pending,
        )
        return joined, None, Correlation(joined, opened=False)
    if join_only:
        return None
    stale = None
    if current is not None and current.open:
        stale = close(current, at=current.last_event_at + current.window, reason="quiet")
    opened = Incident(
        id=new_incident_id(),
        workload=workload,
        opened_at=now,
        last_event_at=now,
        window=window,
        hook=hook,
        agent=agent,
        members={member: state},
    )
    return opened, stale, Correlation(opened, opened=True)


def resolve(current: Incident | None, *, member: str, now: datetime) -> Incident | None:
    """The incident with ``member`` resolved (closed once no member fires), or None."""
    if current is None or not current.open or current.members.get(member) != FIRING:
        return None
    members = {**current.members, member: RESOLVED}
    updated = dataclasses.replace(current, members=members)
    if FIRING not in members.values():
        return close(updated, at=now, reason="resolved")
    return updated


def take_follow_up(
    current: Incident | None, *, interval: timedelta, now: datetime
) -> Incident | None:
    """The incident with its pending evidence taken, or None when nothing is due."""
    if current is None or not current.open or not current.pending:
        return None
    last = current.last_follow_up_at
    if last is not None and now - last < interval:
        return None
    return dataclasses.replace(
        current, pending=(), follow_ups=current.follow_ups + 1, last_follow_up_at=now
    )


def quiet(current: Incident, now: datetime) -> bool:
    return current.open and now - current.last_event_at > current.window


def close(incident: Incident, *, at: datetime, reason: str) -> Incident:
    return dataclasses.replace(incident, closed_at=at, close_reason=reason)


def to_json(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "workload": incident.workload,
        "opened_at": incident.opened_at.timestamp(),
        "last_event_at": incident.last_event_at.timestamp(),
        "window": incident.window.total_seconds(),
        "hook": incident.hook,
        "agent": incident.agent,
        "events": incident.events,
        "members": incident.members,
        "pending": list(incident.pending),
        "follow_ups": incident.follow_ups,
        "last_follow_up_at": _stamp(incident.last_follow_up_at),
        "closed_at": _stamp(incident.closed_at),
        "close_reason": incident.close_reason,
    }


def from_json(doc: dict[str, Any]) -> Incident:
    return Incident(
        id=str(doc["id"]),
        workload=str(doc["workload"]),
        opened_at=_time(doc["opened_at"]),
        last_event_at=_time(doc["last_event_at"]),
        window=timedelta(seconds=float(doc["window"])),
        hook=str(doc.get("hook", "")),
        agent=str(doc.get("agent", "")),
        events=int(doc.get("events", 1)),
        members={str(k): str(v) for k, v in (doc.get("members") or {}).items()},
        pending=tuple(str(p) for p in doc.get("pending") or ()),
        follow_ups=int(doc.get("follow_ups", 0)),
        last_follow_up_at=_maybe_time(doc.get("last_follow_up_at")),
        closed_at=_maybe_time(doc.get("closed_at")),
        close_reason=str(doc.get("close_reason", "")),
    )


def _stamp(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _time(value: Any) -> datetime:
    return datetime.fromtimestamp(float(value), UTC)


def _maybe_time(value: Any) -> datetime | None:
    return None if value is None else _time(value)
