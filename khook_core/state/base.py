"""The state store contract: atomic dedup claims and the audit trail of firings.

``claim`` is the only thing standing between a redelivered event and a second agent run, so
every implementation must make it atomic across processes and instances. Backend errors never
leave an implementation raw: they are wrapped in ``TransientError`` (retry) with the cause
chained.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NewType, Protocol

# hook + event type + resource (+ source, + occurrence): what "the same firing" means.
DedupKey = NewType("DedupKey", str)

DEFAULT_DEDUP_WINDOW = timedelta(minutes=10)
"""khook's suppression window; per hook configurable through ``dedupWindow``."""


@dataclass(frozen=True)
class Firing:
    """One audit record: what fired (or was refused), when, where it went and how it ended."""

    key: DedupKey
    hook: str  # namespace/name
    event_id: str
    event_type: str
    source: str
    resource: str  # namespace/kind/name
    agent: str  # namespace/name, URL or webhook target
    prompt_hash: str
    outcome: str  # dispatched | failed:<why> | released | resolved ...
    at: datetime
    task_id: str = ""
    error: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class StateStore(Protocol):
    """Dedup claims and audit records. All methods take keyword arguments."""

    def claim(self, *, key: DedupKey, ttl: timedelta, now: datetime) -> bool:
        """Atomically take ``key`` for ``ttl``. True for exactly one caller while unexpired."""
        ...

    def release(self, *, key: DedupKey) -> None:
        """Give ``key`` back (after a failed dispatch or a resolved alert). Idempotent."""
        ...

    def confirm(self, *, key: DedupKey, outcome: str, task_id: str = "") -> None:
        """Mark a claim as successfully dispatched; the claim keeps its expiry."""
        ...

    def record(self, firing: Firing) -> None:
        """Append an audit record."""
        ...

    def firings(
        self, *, hook: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[Firing]:
        """Audit records, newest first, filtered by hook (``namespace/name``) and time."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...
