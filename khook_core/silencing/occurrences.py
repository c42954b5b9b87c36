"""A maintenance window's schedule and occurrences: the part of ``silencing.windows`` that only
a configuration with ``maintenanceWindows`` uses.

Kept apart so a function whose ``budgets.yaml`` has no window creates none of these classes at
its cold start; ``khook_core.silencing.windows`` still exports every name (its module
``__getattr__`` loads this module on first use). How occurrences are computed is described
there.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from khook_core.silencing.matchers import Matcher

if TYPE_CHECKING:
    from khook_core.event import Event

RRULE_ANCHOR = datetime(2000, 1, 1)
"""The DTSTART of an RRULE that gives none (local midnight): it fixes the seconds, and the
phase of ``INTERVAL`` > 1. Occurrences are searched from it, so it is old but not ancient."""
FAR = datetime.max.replace(tzinfo=UTC)


class Schedule:
    """The start instants of a cron line or an RRULE in a time zone."""

    def __init__(self, text: str, zone: ZoneInfo) -> None:
        self.text = text.strip()
        self.zone = zone
        self._rule: Any = None
        if self.text.upper().startswith(("RRULE:", "DTSTART")):
            from dateutil import rrule

            self._rule = rrule.rrulestr(
                self.text, dtstart=RRULE_ANCHOR.replace(tzinfo=zone), forceset=True
            )
        else:
            from croniter import croniter

            if not croniter.is_valid(self.text):
                raise ValueError(f"not a cron line (minute hour day month weekday): {text!r}")

    def last_start(self, now: datetime) -> datetime | None:
        """The latest start at or before ``now``."""
        local = now.astimezone(self.zone)
        if self._rule is not None:
            found: datetime | None = self._rule.before(local, inc=True)
            return found
        from croniter import croniter

        # croniter's previous is strictly before its start: start just after now.
        return croniter(self.text, local + timedelta(seconds=1)).get_prev(datetime)

    def next_start(self, now: datetime) -> datetime | None:
        """The first start strictly after ``now``."""
        local = now.astimezone(self.zone)
        if self._rule is not None:
            found: datetime | None = self._rule.after(local, inc=False)
            return found
        from croniter import croniter

        return croniter(self.text, local).get_next(datetime)


def wall_end(start: datetime, duration: timedelta) -> datetime:
    """``start``'s wall-clock time plus ``duration``, in ``start``'s zone (an aware instant)."""
    zone = start.tzinfo
    end = (start.replace(tzinfo=None) + duration).replace(tzinfo=zone)
    # Python compares same-zone datetimes by wall time: compare instants instead.
    return max(end.astimezone(UTC), start.astimezone(UTC) + timedelta(microseconds=1))


@dataclass(frozen=True)
class Occurrence:
    """One opening of a window: ``[start, end)``; its id names it in decisions and backlogs."""

    window: str
    start: datetime
    end: datetime

    @property
    def id(self) -> str:
        return f"window:{self.window}@{self.start.astimezone(UTC).isoformat()}"


@dataclass
class MaintenanceWindow:
    """A compiled window: its scope, schedule and duration, with the last answer cached."""

    name: str
    schedule: Schedule
    duration: timedelta
    matcher: Matcher
    hooks: frozenset[str]
    drop: bool = False
    _span: tuple[datetime, datetime, Occurrence | None] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def applies(self, hook: str, event: Event) -> bool:
        return (not self.hooks or hook in self.hooks) and self.matcher.matches(hook, event)

    def open_at(self, now: datetime) -> Occurrence | None:
        """The occurrence open at ``now``, or None."""
        span = self._span
        if span is not None and span[0] <= now < span[1]:
            return span[2]
        with self._lock:
            span = self._span = self._compute(now)
        return span[2]

    def _compute(self, now: datetime) -> tuple[datetime, datetime, Occurrence | None]:
        # Bounds in UTC: comparing with a zone-aware datetime asks the zone each time.
        start = self.schedule.last_start(now)
        end = None if start is None else wall_end(start, self.duration)
        if start is not None and end is not None and now < end:
            start = start.astimezone(UTC)
            return start, end, Occurrence(self.name, start, end)
        following = self.schedule.next_start(now)
        return end or now, FAR if following is None else following.astimezone(UTC), None

    def next_occurrence(self, now: datetime) -> Occurrence | None:
        """The occurrence open at ``now``, else the next one to open."""
        current = self.open_at(now)
        if current is not None:
            return current
        start = self.schedule.next_start(now)
        if start is None:
            return None
        return Occurrence(self.name, start.astimezone(UTC), wall_end(start, self.duration))
