"""Recurring maintenance windows: when each occurrence starts and whether one is open now.

A schedule is a cron line or an RRULE, read in the window's time zone. The recurrence and the
daylight-saving arithmetic are the libraries': croniter for cron (it steps through local
wall-clock time and resolves the skipped and repeated hours of a DST change), python-dateutil's
``rrule`` for RRULE (RFC 5545, the calendar standard, with ``zoneinfo`` giving each occurrence
its offset). Both are long-maintained, widely used, and croniter is itself built on dateutil.

An occurrence is open from its start until its start's wall-clock time plus ``duration`` in the
window's zone: "02:00 for 2h in Europe/Berlin" is 02:00–04:00 Berlin time every week, summer
and winter, and on the night the clocks go back too (three hours of elapsed time then). On the
night they skip 02:00, the start is the first instant after the gap (03:00) and the window
lasts ``duration``. Which occurrence is open
is computed when ``now`` leaves the span the last answer holds for (the open occurrence, or the
gap before the next), so the per-event cost is one comparison.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from khook_core import conditions
from khook_core.errors import ConfigError, Problem
from khook_core.silencing.matchers import Matcher

if TYPE_CHECKING:
    from khook_core.event import Event
    from khook_core.storm.config import Budgets, MaintenanceWindowSpec

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


@dataclass(frozen=True)
class Windows:
    """Every window of the configuration, in file order."""

    windows: tuple[MaintenanceWindow, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.windows)

    def __iter__(self) -> Iterator[MaintenanceWindow]:
        return iter(self.windows)

    def by_name(self, name: str) -> MaintenanceWindow | None:
        return next((w for w in self.windows if w.name == name), None)


def compile_windows(budgets: Budgets, path: Path) -> Windows:
    """Compile ``budgets.yaml``'s ``maintenanceWindows``.

    Raises:
        ConfigError: one problem per bad field (``maintenanceWindows[0].matcher: …``).
    """
    problems: list[Problem] = []
    compiled: list[MaintenanceWindow] = []
    seen: set[str] = set()
    for index, spec in enumerate(budgets.maintenance_windows):
        window = _compile(spec, f"maintenanceWindows[{index}]", str(path), problems)
        if spec.name in seen:
            problems.append(
                Problem(str(path), None, f"maintenanceWindows[{index}].name: {spec.name!r} twice")
            )
        seen.add(spec.name)
        if window is not None:
            compiled.append(window)
    if problems:
        raise ConfigError(problems)
    return Windows(tuple(compiled))


def _compile(
    spec: MaintenanceWindowSpec, where: str, file: str, problems: list[Problem]
) -> MaintenanceWindow | None:
    count = len(problems)
    zone: ZoneInfo | None = None
    try:
        zone = ZoneInfo(spec.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(
            Problem(
                file,
                None,
                f"{where}.timeZone: unknown time zone {spec.time_zone!r} "
                "(an IANA name such as Europe/Berlin)",
            )
        )
    schedule: Schedule | None = None
    if zone is not None:
        try:
            schedule = Schedule(spec.schedule, zone)
        except (ValueError, TypeError) as exc:
            problems.append(Problem(file, None, f"{where}.schedule: {exc}"))
    if spec.duration <= timedelta(0):
        problems.append(Problem(file, None, f"{where}.duration: must be positive"))
    matcher: Matcher | None = None
    try:
        matcher = Matcher(spec.matcher, source=spec.source)
    except conditions.ConditionSyntaxError as exc:
        problems.append(Problem(file, None, f"{where}.matcher: {exc}"))
    if len(problems) > count or schedule is None or matcher is None:
        return None
    return MaintenanceWindow(
        name=spec.name,
        schedule=schedule,
        duration=spec.duration,
        matcher=matcher,
        hooks=frozenset(spec.hooks),
        drop=spec.drop,
    )


def open_windows(windows: Iterable[MaintenanceWindow], now: datetime) -> list[Occurrence]:
    """The occurrences open at ``now`` (``khook status``)."""
    return [o for w in windows if (o := w.open_at(now)) is not None]
