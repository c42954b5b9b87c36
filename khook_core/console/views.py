"""Store records and the loaded configuration as the API's JSON (the shapes ``openapi`` names)."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from khook_core.hooks import HookRule
from khook_core.silencing.windows import Occurrence
from khook_core.state.base import (
    AuditQueries,
    CircuitRecord,
    CircuitState,
    Firing,
    FiringCount,
    FiringFilter,
    Incident,
    SilenceRecord,
)
from khook_core.storm import keys
from khook_core.storm.records import Backlog, BacklogKey

HEALTH_WINDOW: Final = timedelta(hours=1)
"""Errors are counted over the last hour, what an on-call glance at "is it failing now" needs."""
LAST_ERROR_WINDOW: Final = timedelta(hours=24)
"""How far back a source's last error text is looked for."""
FAILED_PREFIX: Final = "failed"
"""Decisions that are errors: ``failed`` and ``failed:<why>``."""


def iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat().replace("+00:00", "Z")


def is_error(outcome: str) -> bool:
    return outcome == FAILED_PREFIX or outcome.startswith(FAILED_PREFIX + ":")


def firing(record: Firing, task_url: str) -> dict[str, Any]:
    link = None
    if task_url and record.task_id:
        link = task_url.format(agent=quote(record.agent, safe="/"), task_id=quote(record.task_id))
    return {
        "at": iso(record.at),
        "hook": record.hook,
        "decision": record.outcome,
        "source": record.source,
        "type": record.event_type,
        "resource": record.resource,
        "event_id": record.event_id,
        "agent": record.agent,
        "task_id": record.task_id or None,
        "task_url": link,
        "error": record.error or None,
        "key": record.key,
        "extra": dict(record.extra),
        "incident": record.incident or None,
    }


def counts(rows: list[FiringCount]) -> dict[str, Any]:
    """The bucket rows, and totals per source, type, decision and hook over the whole range."""
    totals: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        totals["source"][row.source] += row.count
        totals["type"][row.event_type] += row.count
        totals["decision"][row.outcome] += row.count
        totals["hook"][row.hook] += row.count
    return {
        "buckets": [
            {
                "start": iso(row.bucket),
                "hook": row.hook,
                "source": row.source,
                "type": row.event_type,
                "decision": row.outcome,
                "count": row.count,
            }
            for row in rows
        ],
        "totals": {name: dict(sorted(totals[name].items())) for name in FILTER_TOTALS},
        "total": sum(row.count for row in rows),
    }


FILTER_TOTALS: Final = ("source", "type", "decision", "hook")


def hooks(
    rules: list[HookRule], circuit_state: Callable[[str], CircuitState]
) -> list[dict[str, Any]]:
    """One entry per hook: its event types, agents, file and the file's content version.

    ``status`` is ``active``, or the state of a circuit storm control holds open for one of its
    agents (``circuit_state`` of the key ``storm.keys.circuit`` gives the hook's rules).
    """
    grouped: dict[str, list[HookRule]] = defaultdict(list)
    for rule in rules:
        grouped[rule.hook].append(rule)
    states: dict[str, CircuitState] = {}
    entries = []
    for name, own in sorted(grouped.items()):
        agents = sorted({rule.target.label() for rule in own})
        found = set()
        for rule in own:
            key = keys.circuit(rule)
            if key not in states:
                states[key] = circuit_state(key)
            found.add(states[key])
        status = next((s for s in ("open", "half-open") if s in found), "active")
        entries.append(
            {
                "name": name,
                "event_types": sorted({rule.event_type for rule in own}),
                "agents": agents,
                "file": own[0].file,
                "config_version": file_version(own[0].file),
                "status": status,
            }
        )
    return entries


def file_version(file: str) -> str | None:
    """The first 12 hex digits of the file's SHA-256: changes exactly when the file does."""
    try:
        return hashlib.sha256(Path(file).read_bytes()).hexdigest()[:12]
    except OSError:
        return None


def backlog(key: BacklogKey, held: Backlog) -> dict[str, Any]:
    summary = held.summary
    return {
        "key": key.stored,
        "kind": key.kind.value,
        "hook": held.hook,
        "held": summary.count,
        "first": iso(summary.first),
        "last": iso(summary.last),
        "resources": list(summary.resources),
        "reasons": list(summary.reasons),
        "truncated": summary.truncated,
    }


def circuit(record: CircuitRecord) -> dict[str, Any]:
    return {
        "key": record.key,
        "state": record.state,
        "failures": record.failures,
        "open_until": iso(record.open_until),
    }


def source_health(store: AuditQueries, source: str, now: datetime) -> dict[str, Any]:
    """Last recorded firing, errors in the last hour and the last error text of one source.

    Built from the audit trail: an event that matched no hook leaves no record, so ``last_event``
    is the last event some hook acted on.
    """
    last = store.query_firings(where=FiringFilter(source=source), limit=1).firings
    until = now + _AHEAD

    def error_counts(window: timedelta) -> Counter[str]:
        rows = store.count_firings(
            where=FiringFilter(source=source, since=now - window, until=until), bucket=window
        )
        found: Counter[str] = Counter()
        for row in rows:  # the window spans two clock-aligned buckets
            if is_error(row.outcome):
                found[row.outcome] += row.count
        return found

    errors_last_hour = sum(error_counts(HEALTH_WINDOW).values())
    last_error: Firing | None = None
    for outcome in sorted(error_counts(LAST_ERROR_WINDOW)):
        found = store.query_firings(where=FiringFilter(source=source, outcome=outcome), limit=1)
        for candidate in found.firings:
            if last_error is None or candidate.at > last_error.at:
                last_error = candidate
    if errors_last_hour:
        state = "failing"
    elif not last or last[0].at < now - LAST_ERROR_WINDOW:
        state = "idle"
    else:
        state = "ok"
    return {
        "source": source,
        "state": state,
        "last_event": iso(last[0].at) if last else None,
        "errors_last_hour": errors_last_hour,
        "last_error": (last_error.error or last_error.outcome) if last_error else None,
        "last_error_at": iso(last_error.at) if last_error else None,
    }


_AHEAD: Final = timedelta(minutes=5)
"""Records a little ahead of ``now`` (another instance's clock) still count as recent."""


def silence(record: SilenceRecord, now: datetime) -> dict[str, Any]:
    """A silence as ``/api/v1/silences`` shows it (the dashboard draws it on the timeline)."""
    state = "active" if record.active_at(now) else "pending" if record.starts_at > now else "ended"
    return {
        "id": record.id,
        "matcher": record.matcher,
        "hook": record.hook or None,
        "source": record.source or None,
        "author": record.author,
        "comment": record.comment,
        "starts_at": iso(record.starts_at),
        "ends_at": iso(record.ends_at),
        "created_at": iso(record.created_at),
        "drop": record.drop,
        "expired_by": record.expired_by or None,
        "state": state,
    }


def window(occurrence: Occurrence, now: datetime) -> dict[str, Any]:
    """A maintenance window's open or next occurrence."""
    return {
        "name": occurrence.window,
        "start": iso(occurrence.start.astimezone(UTC)),
        "end": iso(occurrence.end.astimezone(UTC)),
        "open": occurrence.start <= now < occurrence.end,
    }


def incident(record: Incident, runs: list[Firing], task_url: str) -> dict[str, Any]:
    """An incident as ``/api/v1/incidents`` shows it: its members and the runs it opened (the
    audit trail's ``opened:incident`` records); its follow-ups are counted, not recorded."""
    return {
        "id": record.id,
        "workload": record.workload,
        "state": "open" if record.open else "closed",
        "close_reason": record.close_reason or None,
        "hook": record.hook,
        "agent": record.agent,
        "opened_at": iso(record.opened_at),
        "last_event_at": iso(record.last_event_at),
        "closed_at": iso(record.closed_at),
        "events": record.events,
        "members": [{"member": m, "state": s} for m, s in record.members.items()],
        "runs": [firing(f, task_url) for f in runs],
        "follow_ups": record.follow_ups,
        "last_follow_up_at": iso(record.last_follow_up_at),
        "pending": len(record.pending) + record.omitted,
    }
