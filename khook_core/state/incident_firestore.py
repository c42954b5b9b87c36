"""Firestore ``IncidentStore``: each workload's current incident in one document of
``incident_heads`` (id: a digest of the workload), changed by the state store's optimistic
read-modify-write, so concurrent events of one workload from any number of instances open
exactly one incident. An incident a newer one replaces is copied to ``incidents/{id}`` for the
history (``khook incidents``).

Built on a ``FirestoreStateStore`` handle, so ``google.cloud.firestore`` is still imported in
``state/firestore.py`` alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final

from khook_core.state import incident_changes as changes
from khook_core.state.base import Correlation, Evidence, Incident
from khook_core.state.firestore import FirestoreStateStore

HEADS: Final = "incident_heads"
HISTORY: Final = "incidents"


def _key(workload: str) -> str:
    return hashlib.sha256(workload.encode("utf-8", "surrogatepass")).hexdigest()


def _fields(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "workload_key": _key(incident.workload),
        "opened_at": incident.opened_at,
        "open": incident.open,
        "body": json.dumps(changes.to_json(incident), ensure_ascii=True),
    }


def _incident(doc: dict[str, Any] | None) -> Incident | None:
    if not doc or not doc.get("body"):
        return None
    return changes.from_json(json.loads(doc["body"]))


class FirestoreIncidentStore:
    """Incidents in Firestore."""

    def __init__(self, state: FirestoreStateStore) -> None:
        self._state = state
        self._heads = state._client.collection(HEADS)
        self._history = state._client.collection(HISTORY)

    @classmethod
    def from_url(cls, url: str, *, project: str | None = None) -> FirestoreIncidentStore:
        """``firestore`` or ``firestore:<database>``, as ``FirestoreStateStore.from_url``."""
        return cls(FirestoreStateStore.from_url(url, project=project))

    def _change(
        self, workload: str, what: str, change: Callable[[Incident | None], Incident | None]
    ) -> tuple[Incident | None, Incident | None]:
        """(before, after) of one atomic change of the workload's head; after None: unchanged."""

        def apply(
            doc: dict[str, Any] | None,
        ) -> tuple[dict[str, Any] | None, tuple[Incident | None, Incident | None]]:
            before = _incident(doc)
            after = change(before)
            return (None if after is None else _fields(after)), (before, after)

        ref = self._heads.document(_key(workload))
        return self._state._read_modify_write(ref, what, workload, apply)

    def correlate(
        self,
        *,
        workload: str,
        member: str,
        window: timedelta,
        now: datetime,
        hook: str = "",
        agent: str = "",
        resolvable: bool = False,
        evidence: Evidence = "",
        join_only: bool = False,
    ) -> Correlation | None:
        outcome: list[tuple[Incident | None, Correlation | None]] = []

        def change(current: Incident | None) -> Incident | None:
            changed = changes.correlate(
                current,
                workload=workload,
                member=member,
                window=window,
                now=now,
                hook=hook,
                agent=agent,
                resolvable=resolvable,
                evidence=evidence,
                join_only=join_only,
            )
            if changed is None:
                outcome.append((None, None))
                return None
            after, stale, result = changed
            replaced = stale or (
                current if current is not None and after.id != current.id else None
            )
            outcome.append((replaced, result))
            return None if result.duplicate else after

        self._change(workload, "incident correlate", change)
        replaced, result = outcome[-1]  # the round whose write landed
        if replaced is not None:
            state = self._state
            with state._wrap("incident history", replaced.id):
                self._history.document(replaced.id).set(
                    _fields(replaced), retry=state._retry, timeout=state.timeout
                )
        return result

    def resolve(self, *, workload: str, member: str, now: datetime) -> Incident | None:
        _, after = self._change(
            workload, "incident resolve", lambda c: changes.resolve(c, member=member, now=now)
        )
        return after

    def take_follow_up(
        self, *, workload: str, interval: timedelta, now: datetime
    ) -> tuple[Incident, tuple[str, ...]] | None:
        before, after = self._change(
            workload,
            "incident follow-up",
            lambda c: changes.take_follow_up(c, interval=interval, now=now),
        )
        if before is None or after is None:
            return None
        return after, changes.taken_evidence(before)

    def requeue_follow_up(
        self, *, workload: str, incident: str, evidence: tuple[str, ...], sent: int
    ) -> Incident | None:
        _, after = self._change(
            workload,
            "incident follow-up requeue",
            lambda c: changes.requeue_follow_up(c, incident=incident, evidence=evidence, sent=sent),
        )
        return after

    def close_quiet(self, *, now: datetime, limit: int) -> list[Incident]:
        closed: list[Incident] = []
        for incident in self.incidents(open_only=True, limit=10 * limit):
            if len(closed) >= limit:
                break
            if not changes.quiet(incident, now):
                continue

            def change(current: Incident | None) -> Incident | None:
                if current is None or not changes.quiet(current, now):
                    return None
                return changes.close(
                    current, at=current.last_event_at + current.window, reason="quiet"
                )

            _, after = self._change(incident.workload, "incident close", change)
            if after is not None:
                closed.append(after)
        return closed

    def incidents(
        self, *, open_only: bool = False, workload: str | None = None, limit: int = 100
    ) -> list[Incident]:
        state = self._state
        field_filter = state._firestore.FieldFilter
        collections = [self._heads] if open_only else [self._heads, self._history]
        found: dict[str, Incident] = {}
        with state._wrap("incidents", workload or "*"):
            for collection in collections:
                query: Any = collection
                if open_only:
                    query = query.where(filter=field_filter("open", "==", True))
                if workload is not None:
                    query = query.where(filter=field_filter("workload_key", "==", _key(workload)))
                for snap in query.stream(retry=state._retry, timeout=state.timeout):
                    incident = _incident(snap.to_dict())
                    if incident is not None and incident.id not in found:
                        found[incident.id] = incident
        ordered = sorted(found.values(), key=lambda i: i.opened_at, reverse=True)
        return ordered[:limit]

    def close(self) -> None:
        self._state.close()
