"""In-process state store: for tests and one-shot replays. Not shared between processes."""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta

from khook_core.state.base import DedupKey, Firing

MAX_FIRINGS = 10_000
"""Audit records kept in memory; older ones fall off so a long replay stays bounded."""


class MemoryStateStore:
    """Claims in a dict, guarded by a lock; expired claims are reclaimable."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claims: dict[DedupKey, datetime] = {}
        self._outcomes: dict[DedupKey, str] = {}
        self._firings: deque[Firing] = deque(maxlen=MAX_FIRINGS)

    def claim(self, *, key: DedupKey, ttl: timedelta, now: datetime) -> bool:
        with self._lock:
            expires = self._claims.get(key)
            if expires is not None and expires > now:
                return False
            self._claims[key] = now + ttl
            return True

    def release(self, *, key: DedupKey) -> None:
        with self._lock:
            self._claims.pop(key, None)
            self._outcomes.pop(key, None)

    def confirm(self, *, key: DedupKey, outcome: str, task_id: str = "") -> None:
        with self._lock:
            if key in self._claims:
                self._outcomes[key] = outcome

    def record(self, firing: Firing) -> None:
        with self._lock:
            self._firings.append(firing)

    def firings(
        self, *, hook: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[Firing]:
        with self._lock:
            items = [
                f
                for f in reversed(self._firings)
                if (hook is None or f.hook == hook) and (since is None or f.at >= since)
            ]
        return items[:limit]

    def close(self) -> None:
        """Nothing to release."""
