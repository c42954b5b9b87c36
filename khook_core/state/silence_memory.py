"""In-memory ``SilenceStore``: the reference implementation, shared by the threads of a process."""

from __future__ import annotations

import dataclasses
import threading
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from khook_core.state.base import SilenceRecord


class MemorySilenceStore:
    """Silences in a dict by id, behind a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, SilenceRecord] = {}

    def add_silence(self, *, silence: SilenceRecord) -> tuple[SilenceRecord, bool]:
        with self._lock:
            existing = self._by_id.get(silence.id)
            if existing is not None:
                return existing, False
            self._by_id[silence.id] = silence
            return silence, True

    def get_silence(self, *, id: str) -> SilenceRecord | None:
        return self._by_id.get(id)

    def silences(self, *, now: datetime, include_expired: bool, limit: int) -> list[SilenceRecord]:
        with self._lock:
            found = [s for s in self._by_id.values() if include_expired or s.ends_at > now]
        found.sort(key=lambda s: (s.ends_at, s.id), reverse=True)
        return found[: max(limit, 0)]

    def expire_silence(self, *, id: str, now: datetime, by: str) -> SilenceRecord | None:
        with self._lock:
            silence = self._by_id.get(id)
            if silence is None or silence.ends_at <= now:
                return silence
            expired = dataclasses.replace(
                silence, ends_at=max(now, silence.starts_at), expired_by=by
            )
            self._by_id[id] = expired
            return expired

    def close(self) -> None:
        """Nothing to release."""
