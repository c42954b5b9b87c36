"""In-memory ``IncidentStore``: the reference implementation, shared by a process's threads."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from khook_core.state import incident_changes as changes
from khook_core.state.base import Correlation, Evidence, Incident


class MemoryIncidentStore:
    """Each workload's current incident in a dict, closed ones in a list, behind one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: dict[str, Incident] = {}
        self._closed: list[Incident] = []

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
        with self._lock:
            current = self._current.get(workload)
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
                return None
            after, stale, result = changed
            if after is not current:  # a duplicate changes nothing
                if current is not None and current.id != after.id:  # replaced: keep it listed
                    self._closed.append(stale or current)
                self._current[workload] = after
        return result

    def resolve(self, *, workload: str, member: str, now: datetime) -> Incident | None:
        with self._lock:
            after = changes.resolve(self._current.get(workload), member=member, now=now)
            if after is not None:
                self._current[workload] = after
        return after

    def take_follow_up(
        self, *, workload: str, interval: timedelta, now: datetime
    ) -> tuple[Incident, tuple[str, ...]] | None:
        with self._lock:
            current = self._current.get(workload)
            after = changes.take_follow_up(current, interval=interval, now=now)
            if after is None or current is None:
                return None
            self._current[workload] = after
        return after, changes.taken_evidence(current)

    def requeue_follow_up(
        self, *, workload: str, incident: str, evidence: tuple[str, ...], sent: int
    ) -> Incident | None:
        with self._lock:
            after = changes.requeue_follow_up(
                self._current.get(workload), incident=incident, evidence=evidence, sent=sent
            )
            if after is not None:
                self._current[workload] = after
        return after

    def close_quiet(self, *, now: datetime, limit: int) -> list[Incident]:
        closed: list[Incident] = []
        with self._lock:
            for workload, current in list(self._current.items()):
                if len(closed) >= limit:
                    break
                if changes.quiet(current, now):
                    done = changes.close(
                        current, at=current.last_event_at + current.window, reason="quiet"
                    )
                    self._current[workload] = done
                    closed.append(done)
        return closed

    def incidents(
        self, *, open_only: bool = False, workload: str | None = None, limit: int = 100
    ) -> list[Incident]:
        with self._lock:
            found = [*self._current.values(), *self._closed]
        found = [
            i
            for i in found
            if (not open_only or i.open) and (workload is None or i.workload == workload)
        ]
        return sorted(found, key=lambda i: i.opened_at, reverse=True)[:limit]

    def close(self) -> None:
        pass
