"""In-process state store: for tests and one-shot replays. Not shared between processes."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections import Counter, deque
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from khook_core.state import base
from khook_core.state.base import DedupKey
from khook_core.storm.records import BacklogKey

if TYPE_CHECKING:
    from khook_core.storm.backlogs import Backlog

MAX_FIRINGS = 10_000
"""Audit records kept in memory; older ones fall off so a long replay stays bounded."""


class MemoryStateStore:
    """Claims in a dict, guarded by a lock; expired claims are reclaimable."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claims: dict[DedupKey, datetime] = {}
        self._outcomes: dict[DedupKey, str] = {}
        self._owners: dict[DedupKey, base.HeldClaim] = {}  # claims taken with claim_firing
        # Each with its insertion number: the tie-break of equal times for the console's pages.
        self._firings: deque[tuple[int, base.Firing]] = deque(maxlen=MAX_FIRINGS)
        self._recorded = itertools.count()
        self._slots: dict[str, tuple[float, int]] = {}
        self._leases: dict[str, dict[str, datetime]] = {}  # scope -> lease id -> expiry
        self._backlog: dict[BacklogKey, Backlog] = {}
        self._circuits: dict[str, tuple[int, datetime | None]] = {}

    def claim(self, *, key: DedupKey, ttl: timedelta, now: datetime) -> bool:
        with self._lock:
            expires = self._claims.get(key)
            if expires is not None and expires > now:
                return False
            self._claims[key] = now + ttl
            self._owners.pop(key, None)
            return True

    def claim_firing(
        self, *, key: DedupKey, owner: str, ttl: timedelta, now: datetime, stale_after: timedelta
    ) -> base.ClaimResult:
        with self._lock:
            expires = self._claims.get(key)
            held = self._owners.get(key)
            if expires is None or expires <= now or held is None:
                if expires is not None and expires > now:
                    return "held"  # a plain claim (no owner): never ours
                self._claims[key] = now + ttl
                self._outcomes.pop(key, None)
                self._owners[key] = base.HeldClaim(owner, base.CLAIMED, now)
                return "won"
            if held.owner != owner:  # the storm's common case: someone else's claim
                return "held"
            current = held._replace(outcome=self._outcomes.get(key, base.CLAIMED))
            result = base.resume_result(current, owner, now, stale_after)
            if result in ("resumed", "uncertain"):
                self._outcomes[key] = base.CLAIMED
                self._owners[key] = base.HeldClaim(owner, base.CLAIMED, now, held.unsure)
            return result

    def mark_uncertain(self, *, key: DedupKey) -> None:
        with self._lock:
            held = self._owners.get(key)
            if key in self._claims and held is not None:
                self._outcomes[key] = base.UNCERTAIN
                self._owners[key] = base.HeldClaim(
                    held.owner, base.UNCERTAIN, held.claimed_at, True
                )

    def release(self, *, key: DedupKey) -> None:
        with self._lock:
            self._claims.pop(key, None)
            self._outcomes.pop(key, None)
            self._owners.pop(key, None)

    def confirm(self, *, key: DedupKey, outcome: str, task_id: str = "") -> None:
        with self._lock:
            if key in self._claims:
                self._outcomes[key] = outcome

    def record(self, firing: base.Firing) -> None:
        with self._lock:
            self._firings.append((next(self._recorded), firing))

    def firings(
        self, *, hook: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[base.Firing]:
        with self._lock:
            items = [
                f
                for _, f in reversed(self._firings)
                if (hook is None or f.hook == hook) and (since is None or f.at >= since)
            ]
        return items[:limit]

    def query_firings(
        self, *, where: base.FiringFilter, cursor: str | None = None, limit: int = 100
    ) -> base.FiringPage:
        after: tuple[int, int] | None = None
        if cursor is not None:
            at_us, seq = base.decode_cursor(cursor, (int, int))
            after = (at_us, seq)
        with self._lock:
            rows = [
                (_micros(f.at), seq, f)
                for seq, f in self._firings
                if where.matches(f) and (after is None or (_micros(f.at), seq) < after)
            ]
        rows.sort(key=lambda row: (row[0], row[1]), reverse=True)
        page = rows[: max(limit, 0)]
        more = len(rows) > len(page) and bool(page)
        next_cursor = base.encode_cursor(page[-1][0], page[-1][1]) if more else None
        return base.FiringPage([f for _, _, f in page], next_cursor)

    def count_firings(
        self, *, where: base.FiringFilter, bucket: timedelta
    ) -> list[base.FiringCount]:
        with self._lock:
            counts = Counter(
                (base.bucket_start(f.at, bucket), f.hook, f.source, f.event_type, f.outcome)
                for _, f in self._firings
                if where.matches(f)
            )
        return [base.FiringCount(*group, count) for group, count in sorted(counts.items())]

    def backlogs(self, *, limit: int) -> list[tuple[BacklogKey, Backlog]]:
        with self._lock:
            held = sorted(self._backlog.items(), key=lambda item: item[0].stored)
        return held[: max(limit, 0)]

    def circuits(self, *, now: datetime, limit: int) -> list[base.CircuitRecord]:
        with self._lock:
            held = sorted(self._circuits.items())[: max(limit, 0)]
        return [
            base.CircuitRecord(key, failures, base.circuit_state_of(until, now), until)
            for key, (failures, until) in held
        ]

    def take_slot(self, *, key: str, limit: int, window: timedelta, now: datetime) -> bool:
        start = base.window_start(now, window)
        with self._lock:
            current, used = self._slots.get(key, (start, 0))
            if current > start:  # a clock behind the window already counted
                return False
            if current != start:
                used = 0
            if used >= limit:
                return False
            self._slots[key] = (start, used + 1)
            return True

    def return_slot(self, *, key: str, window: timedelta, now: datetime) -> None:
        start = base.window_start(now, window)
        with self._lock:
            current, used = self._slots.get(key, (start, 0))
            if current == start and used > 0:
                self._slots[key] = (start, used - 1)

    def acquire_lease(self, *, scope: str, cap: int, ttl: timedelta, now: datetime) -> str | None:
        with self._lock:
            live = {
                lease: expiry
                for lease, expiry in self._leases.get(scope, {}).items()
                if expiry > now
            }
            self._leases[scope] = live
            if len(live) >= cap:
                return None
            lease = uuid.uuid4().hex
            live[lease] = now + ttl
            return lease

    def release_lease(self, *, scope: str, lease: str) -> None:
        with self._lock:
            self._leases.get(scope, {}).pop(lease, None)

    def add_backlog(self, *, key: BacklogKey, backlog: Backlog) -> None:
        with self._lock:
            held = self._backlog.get(key)
            self._backlog[key] = backlog if held is None else held.merge(backlog)

    def take_backlog(self, *, key: BacklogKey) -> Backlog | None:
        with self._lock:
            return self._backlog.pop(key, None)

    def backlog_keys(self, *, limit: int) -> list[BacklogKey]:
        with self._lock:
            return list(self._backlog)[:limit]

    def record_failure(
        self, *, key: str, threshold: int, cool_down: timedelta, now: datetime
    ) -> bool:
        with self._lock:
            failures, _ = self._circuits.get(key, (0, None))
            failures += 1
            open_until = now + cool_down if failures >= threshold else None
            self._circuits[key] = (failures, open_until)
            return open_until is not None

    def record_success(self, *, key: str) -> None:
        with self._lock:
            self._circuits.pop(key, None)

    def circuit_state(self, *, key: str, now: datetime) -> base.CircuitState:
        with self._lock:
            _, open_until = self._circuits.get(key, (0, None))
        return base.circuit_state_of(open_until, now)

    def close(self) -> None:
        """Nothing to release."""


def _micros(at: datetime) -> int:
    """``at`` in whole microseconds since the epoch: an exact, comparable cursor value."""
    return (at - _EPOCH) // timedelta(microseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
