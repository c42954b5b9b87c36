"""The incident rules, as pure functions of a workload's current incident: every backend reads
the current incident, applies one of these and writes the result in one atomic step, so the
three backends cannot disagree on what joining, resolving or a follow-up means.

Incidents travel as JSON objects (``to_json``/``from_json``): one text column in SQLite, one
field in Firestore, the same shape in both.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any, Final

from khook_core.state.base import Correlation, Evidence, Incident

MAX_INCIDENT_MEMBERS: Final = 200
"""Members remembered for redelivery checks and resolution; an incident in a long storm keeps
counting ``events`` past it without growing its record (Firestore's 1 MiB document limit)."""
MAX_PENDING_EVIDENCE: Final = 50
"""Evidence lines held for the next follow-up; a follow-up summarises, it never floods."""

FIRING: Final = "firing"
RESOLVED: Final = "resolved"
EVENT: Final = "event"


class Members(Mapping[str, str]):
    """An incident's members as one join left them: the first ``size`` entries of a record
    that joins only append to (member → its position and state). A join adds its member in
    place, whatever the incident holds, and every incident handed out before still reads
    exactly the members it had; a change of state (``resolve``) makes a new record."""

    __slots__ = ("_record", "_size")

    def __init__(self, record: dict[str, tuple[int, str]], size: int) -> None:
        self._record, self._size = record, size

    @classmethod
    def first(cls, member: str, state: str) -> Members:
        return cls({member: (0, state)}, 1)

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]]) -> Members:
        record = {member: (n, state) for n, (member, state) in enumerate(pairs)}
        return cls(record, len(record))

    def __getitem__(self, member: str) -> str:
        position, state = self._record[member]
        if position >= self._size:
            raise KeyError(member)
        return state

    def __contains__(self, member: object) -> bool:
        entry = self._record.get(member) if isinstance(member, str) else None
        return entry is not None and entry[0] < self._size

    def __iter__(self) -> Iterator[str]:
        # Taken whole, in C: a join appending in another thread cannot break the iteration.
        return iter(tuple(islice(self._record, self._size)))

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return repr(dict(self.items()))


_new = object.__new__


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
    evidence: Evidence,
    join_only: bool = False,
) -> tuple[Incident, Incident | None, Correlation] | None:
    """(the workload's incident after the event, a stale incident it closed or None, result);
    None when ``join_only`` and there is nothing to join."""
    state = FIRING if resolvable else EVENT
    # A join is a storm's every repeat: written out here (no helper calls, no copies).
    last = current.last_event_at if current is not None else now
    if current is not None and current.closed_at is None and now - last <= current.window:
        members = current.members
        if type(members) is Members:
            record, size = members._record, members._size
            entry = record.get(member)
            if entry is not None and entry[0] < size:
                return current, None, Correlation(current, False, True)
            if size < MAX_INCIDENT_MEMBERS:  # past the cap, nothing to add
                if len(record) != size:  # an older incident's: what was added since is not
                    record = dict(islice(record.items(), size))  # its own, so it gets a copy
                record[member] = (size, state)  # in place: no earlier incident sees it
                added = _new(Members)
                added._record, added._size = record, size + 1
                members = added
        elif member in members:
            return current, None, Correlation(current, False, True)
        elif len(members) < MAX_INCIDENT_MEMBERS:  # read back from a stored body, whole:
            members = {**members, member: state}  # its copy is that join's own
        joined = _new(Incident)
        fields = joined.__dict__
        fields.update(current.__dict__)
        if now > last:
            fields["last_event_at"] = now
        fields["events"] = current.events + 1
        fields["members"] = members
        if evidence:  # the first lines are kept, the rest counted: a storm's thousandth
            if len(current.pending) < MAX_PENDING_EVIDENCE:  # repeat costs no text
                fields["pending"] = (
                    *current.pending,
                    evidence() if callable(evidence) else evidence,
                )
            else:
                fields["omitted"] = current.omitted + 1
        return joined, None, Correlation(joined, False)
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
        members=Members.first(member, state),
    )
    return opened, stale, Correlation(opened, opened=True)


def resolve(current: Incident | None, *, member: str, now: datetime) -> Incident | None:
    """The incident with ``member`` resolved (closed once no member fires), or None."""
    if current is None or not current.open or current.members.get(member) != FIRING:
        return None
    members = Members.of({**current.members, member: RESOLVED}.items())
    updated = _evolve(current, members=members)
    if FIRING not in members.values():
        return close(updated, at=now, reason="resolved")
    return updated


def take_follow_up(
    current: Incident | None, *, interval: timedelta, now: datetime
) -> Incident | None:
    """The incident with its pending evidence taken, or None when nothing is due."""
    if current is None or not current.open or not (current.pending or current.omitted):
        return None
    last = current.last_follow_up_at
    if last is not None and now - last < interval:
        return None
    return _evolve(
        current, pending=(), omitted=0, follow_ups=current.follow_ups + 1, last_follow_up_at=now
    )


def requeue_follow_up(
    current: Incident | None, *, incident: str, evidence: tuple[str, ...], sent: int
) -> Incident | None:
    """The incident with a follow-up's evidence put back, oldest first, ahead of what joined
    since (the cap still holds: lines past it are counted), or None when there is nowhere to
    put it: the incident ``incident`` closed or was replaced since it was taken.

    ``sent`` is the follow-up's number: the count goes back only while no later follow-up
    was taken, so the next one reuses the failed one's number (and message id)."""
    if current is None or not current.open or current.id != incident or not evidence:
        return None
    counted = _omitted_count(evidence[-1])
    if counted:  # the count line ``taken_evidence`` added goes back to being a count
        evidence = evidence[:-1]
    lines = (*evidence, *current.pending)
    kept = lines[:MAX_PENDING_EVIDENCE]
    follow_ups = current.follow_ups - 1 if current.follow_ups == sent else current.follow_ups
    return _evolve(
        current,
        pending=kept,
        omitted=current.omitted + counted + len(lines) - len(kept),
        follow_ups=follow_ups,
    )


def taken_evidence(before: Incident) -> tuple[str, ...]:
    """What a follow-up carries: the kept lines, and one counting the events past the cap."""
    if not before.omitted:
        return before.pending
    return (*before.pending, _OMITTED_LINE.format(before.omitted))


_OMITTED_LINE: Final = "... and {} more event(s) like these, not listed"
_OMITTED_PATTERN: Final = re.compile(r"\.\.\. and ([0-9]+) more event\(s\) like these, not listed")


def _omitted_count(line: str) -> int:
    """The count in ``taken_evidence``'s last line, 0 for an evidence line (every evidence
    line starts with its event's time, never with dots)."""
    matched = _OMITTED_PATTERN.fullmatch(line)
    return int(matched.group(1)) if matched else 0


def _evolve(incident: Incident, **changes: Any) -> Incident:
    """``dataclasses.replace`` without its per-call introspection: it runs once per joining
    event, the hot path of a storm (the fields need no validation: all are ours)."""
    new = _new(Incident)
    new.__dict__.update(incident.__dict__)
    new.__dict__.update(changes)
    return new


def quiet(current: Incident, now: datetime) -> bool:
    return current.open and now - current.last_event_at > current.window


def close(incident: Incident, *, at: datetime, reason: str) -> Incident:
    return _evolve(incident, closed_at=at, close_reason=reason)


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
        "members": dict(incident.members),
        "pending": list(incident.pending),
        "omitted": incident.omitted,
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
        omitted=int(doc.get("omitted", 0)),
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
