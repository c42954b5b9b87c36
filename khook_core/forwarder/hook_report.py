"""The forwarder's report to each Hook: status and Events from the audit trail, every interval.

Each pass reads the audit records written since the previous pass (less ``LAG``, for a function
whose record lands after the pass began; a record seen twice is folded once), folds them into
each Hook's activity, writes the status of every Hook whose rendered status differs from the one
it holds, and records the rate-limited Events. Only Hooks the publisher has judged at their
current generation are reported on, so ``Ready`` always describes the spec the Hook holds. The
first pass reads ``RETENTION`` back (a restarted forwarder rebuilds ``activeEvents``) but records
Events only for firings after it started (the previous run recorded the earlier ones). Findings
to report on the cluster (``finding_events``) are handed on from every record read, the first
pass's too: a finding already reported is dropped when its status record is read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final

from kubernetes.client.exceptions import ApiException

from khook_core.decisions import DecisionKind
from khook_core.forwarder.backoff import Backoff
from khook_core.forwarder.finding_events import FindingEvents
from khook_core.forwarder.hook_events import FiringEvents
from khook_core.forwarder.hook_status import (
    RETENTION,
    HookActivity,
    StatusWriter,
    Verdict,
    render,
    same_status,
)
from khook_core.liveconfig import cluster
from khook_core.state.base import AuditQueries, Firing, FiringFilter

logger = logging.getLogger(__name__)

LAG: Final = timedelta(seconds=15)
"""How far each pass reads back before the previous one: a function's audit record carries the
time of its decision and is committed a moment later. Short, because every record read costs a
Firestore read: a pass reads the interval's records plus these 15 seconds'."""
PAGE: Final = 500
MAX_RECORDS: Final = 20_000
"""At most this many audit records a pass (a storm is summarised, not read whole)."""

Identity = tuple[str, str, str, str, datetime]


def identity(firing: Firing) -> Identity:
    return (firing.hook, str(firing.key), firing.event_id, firing.outcome, firing.at)


class Judgements:
    """What the publisher decided, per Hook, at which generation (written by its thread)."""

    def __init__(self) -> None:
        self.verdicts: dict[str, tuple[int, Verdict]] = {}
        self.judged = False
        """The publisher has judged the listed Hooks once: a pass before that would find no
        Hook for the audit records it reads, and skip them for good."""

    def update(self, objects: list[dict[str, Any]], rejected: dict[str, Any]) -> None:
        verdicts: dict[str, tuple[int, Verdict]] = {}
        for obj in objects:
            key = cluster.key_of(obj)
            generation = int((obj.get("metadata") or {}).get("generation") or 0)
            verdicts[key] = (generation, Verdict(tuple(rejected.get(key) or ())))
        self.verdicts = verdicts  # one assignment: readers see the old or the new whole
        self.judged = True

    def of(self, obj: dict[str, Any]) -> Verdict | None:
        judged = self.verdicts.get(cluster.key_of(obj))
        generation = int((obj.get("metadata") or {}).get("generation") or 0)
        if judged is None or judged[0] != generation:
            return None
        return judged[1]


class HookReporter:
    """One pass per ``interval``: see the module docstring."""

    def __init__(
        self,
        objects: Callable[[], list[dict[str, Any]]],
        judgements: Judgements,
        audit: AuditQueries,
        writer: StatusWriter,
        events: FiringEvents,
        *,
        clock: Callable[[], datetime],
        interval: float,
        findings: FindingEvents | None = None,
    ) -> None:
        self.objects = objects
        self.findings = findings
        self.judgements = judgements
        self.audit = audit
        self.writer = writer
        self.events = events
        self.clock = clock
        self.interval = interval
        self.activities: dict[str, HookActivity] = {}
        self.started = clock()
        self.read_until: datetime | None = None
        self.seen: dict[Identity, datetime] = {}

    def _read(self, now: datetime) -> list[Firing]:
        since = self.read_until - LAG if self.read_until else now - RETENTION
        records: list[Firing] = []
        cursor: str | None = None
        while len(records) < MAX_RECORDS:
            page = self.audit.query_firings(
                where=FiringFilter(since=since), cursor=cursor, limit=PAGE
            )
            records += page.firings
            if page.cursor is None:
                break
            cursor = page.cursor
        self.read_until = now
        for key in [k for k, at in self.seen.items() if at < since]:
            del self.seen[key]
        fresh = []
        for firing in records:
            ident = identity(firing)
            if ident not in self.seen:
                self.seen[ident] = firing.at
                fresh.append(firing)
        return fresh

    def run_once(self) -> None:
        if not self.judgements.judged:
            return
        now = self.clock()
        firings = self._read(now)
        objects = {cluster.key_of(o): o for o in self.objects()}
        for firing in sorted(firings, key=lambda f: f.at):
            if self.findings is not None:
                self.findings.add(firing)
            if firing.hook not in objects:
                continue
            self.activities.setdefault(firing.hook, HookActivity()).fold(firing)
            if firing.outcome == DecisionKind.DISPATCHED.value and firing.at >= self.started:
                self.events.add(firing.hook, firing)
        for key in [k for k in self.activities if k not in objects]:
            del self.activities[key]
        for key, obj in objects.items():
            verdict = self.judgements.of(obj)
            if verdict is None:
                continue  # not judged at this generation yet: the next pass
            activity = self.activities.setdefault(key, HookActivity())
            activity.prune(now)
            if same_status(obj.get("status"), self._desired(verdict, activity, now)(obj)):
                continue
            meta = obj.get("metadata") or {}
            try:
                self.writer.write(
                    str(meta.get("namespace")),
                    str(meta.get("name")),
                    self._desired(verdict, activity, now),
                )
            except ApiException as exc:  # this Hook only (RBAC, a rejected value): the others go on
                logger.warning("status of Hook %s not written: %s", key, exc)
        self.events.flush(objects)
        self.events.forget(set(objects))
        if self.findings is not None:
            self.findings.flush(objects)

    @staticmethod
    def _desired(
        verdict: Verdict, activity: HookActivity, now: datetime
    ) -> Callable[[Any], dict[str, Any]]:
        def desired(obj: Any) -> dict[str, Any]:
            activity.seed(obj.get("status") or {}, now)
            return render(verdict, activity, obj, now)

        return desired

    def run(self, stop: threading.Event, backoff: Backoff) -> None:
        while not stop.wait(self.interval):
            try:
                self.run_once()
                backoff.reset()
            except Exception as exc:  # the API server or the store: report again later
                delay = backoff.next()
                logger.warning("Hook status not reported (%s); retrying in %.1f s", exc, delay)
                stop.wait(delay)
