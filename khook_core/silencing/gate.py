"""What the pipeline asks for each match: is it silenced, and by what.

The active silences come from the ``SilenceStore`` at most once per ``interval`` seconds (the
configuration's refresh interval): one read an interval per instance, not one per event, so a
silence added anywhere is honoured everywhere within the interval. Between reads the cached
list is filtered by ``now`` again, so a silence that ends between two reads stops muting at its
end. A failed read keeps the last list (and is logged): a store outage neither mutes nor
unmutes anything new.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from khook_core import conditions
from khook_core.errors import ConfigError, TransientError
from khook_core.silencing.matchers import Matcher

if TYPE_CHECKING:
    from khook_core.event import Event
    from khook_core.silencing.windows import Windows
    from khook_core.state.base import SilenceRecord, SilenceStore

logger = logging.getLogger(__name__)

MAX_ACTIVE = 1_000
"""Silences one read fetches: far more than anyone keeps at once."""


class Muting(NamedTuple):
    """What silenced a match: a silence (``id``) or a window's occurrence (``window:…``)."""

    id: str
    drop: bool
    ends_at: datetime
    label: str
    """What the decision's detail says (``silence 3f2a… (db migration) until …``)."""


class ActiveSilence(NamedTuple):
    record: SilenceRecord
    matcher: Matcher


class SilenceGate:
    """The silences in force for one process, read once an interval.

    Args:
        open_store: opens the silences' handle on first use (so a cold start opens nothing).
        interval: seconds between two reads; 0 reads on every check (tests, replay).
    """

    def __init__(
        self,
        open_store: Callable[[], SilenceStore],
        *,
        interval: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._open_store = open_store
        self._store: SilenceStore | None = None
        self.interval = interval
        self._monotonic = monotonic
        self._next_read = 0.0
        self._active: tuple[ActiveSilence, ...] = ()
        self._compiled: dict[tuple[str, str, str], Matcher] = {}
        self._lock = threading.Lock()
        self._read_at: datetime | None = None

    @property
    def store(self) -> SilenceStore:
        if self._store is None:
            self._store = self._open_store()
        return self._store

    def active(self, now: datetime) -> tuple[ActiveSilence, ...]:
        """The silences in force at ``now`` (from the last read, re-read once an interval)."""
        tick = self._monotonic()
        if tick >= self._next_read and self._lock.acquire(blocking=False):
            try:
                self._next_read = tick + self.interval
                self._refresh(now)
            finally:
                self._lock.release()
        active = self._active
        if not active:  # the usual case: no silence anywhere, nothing to filter
            return active
        return tuple(s for s in active if s.record.active_at(now))

    def _refresh(self, now: datetime) -> None:
        try:
            records = self.store.silences(now=now, include_expired=False, limit=MAX_ACTIVE)
        except (TransientError, ConfigError) as exc:
            logger.warning("silences unreadable; keeping the %d known: %s", len(self._active), exc)
            return
        active: list[ActiveSilence] = []
        for record in records:
            matcher = self._matcher(record)
            if matcher is not None:
                active.append(ActiveSilence(record, matcher))
        self._active = tuple(active)

    def _matcher(self, record: SilenceRecord) -> Matcher | None:
        key = (record.matcher, record.hook, record.source)
        matcher = self._compiled.get(key)
        if matcher is None:
            try:
                matcher = Matcher(record.matcher, hook=record.hook, source=record.source)
            except conditions.ConditionSyntaxError as exc:  # stored by another version
                logger.error("silence %s ignored: matcher does not compile: %s", record.id, exc)
                return None
            self._compiled[key] = matcher
        return matcher

    def check(self, hook: str, event: Event, now: datetime, windows: Windows) -> Muting | None:
        """The silence or window that mutes ``event`` for ``hook`` at ``now``, or None."""
        if not self._active and not windows.windows and self._monotonic() < self._next_read:
            return None  # the per-event path when nothing mutes and no read is due
        active = self.active(now)
        if not active and not windows.windows:  # the per-event path when nothing mutes
            return None
        for silence in active:
            if silence.matcher.matches(hook, event):
                record = silence.record
                note = f" ({record.comment})" if record.comment else ""
                return Muting(
                    record.id,
                    record.drop,
                    record.ends_at,
                    f"silence {record.id}{note} until {record.ends_at.isoformat()}",
                )
        for window in windows.windows:
            occurrence = window.open_at(now)
            if occurrence is not None and window.applies(hook, event):
                return Muting(
                    occurrence.id,
                    window.drop,
                    occurrence.end,
                    f"maintenance window {window.name} until {occurrence.end.isoformat()}",
                )
        return None

    def ended(self, muting_id: str, now: datetime, windows: Windows) -> bool:
        """Whether the silence or window occurrence ``muting_id`` has ended at ``now`` (read
        from the store, not the cache: the sweep must not summarise a silence still on)."""
        if muting_id.startswith("window:"):
            name, _, _start = muting_id.removeprefix("window:").partition("@")
            window = windows.by_name(name)
            if window is None:
                return True
            occurrence = window.open_at(now)
            return occurrence is None or occurrence.id != muting_id
        record = self.store.get_silence(id=muting_id)
        return record is None or not record.active_at(now)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
