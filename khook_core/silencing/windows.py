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

The schedule and occurrence classes are in ``silencing/occurrences.py``, loaded (and their
dataclasses created) only when a window is configured; their names are exported from here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from khook_core import conditions, lazyexports
from khook_core.errors import ConfigError, Problem
from khook_core.silencing.matchers import Matcher

if TYPE_CHECKING:
    from khook_core.silencing.occurrences import FAR as FAR
    from khook_core.silencing.occurrences import RRULE_ANCHOR as RRULE_ANCHOR
    from khook_core.silencing.occurrences import MaintenanceWindow as MaintenanceWindow
    from khook_core.silencing.occurrences import Occurrence as Occurrence
    from khook_core.silencing.occurrences import Schedule as Schedule
    from khook_core.silencing.occurrences import wall_end as wall_end
    from khook_core.storm.config import Budgets, MaintenanceWindowSpec

_OCCURRENCES = frozenset(
    {"FAR", "RRULE_ANCHOR", "MaintenanceWindow", "Occurrence", "Schedule", "wall_end"}
)
"""The names defined in ``silencing/occurrences.py`` and exported from here on first use."""


__getattr__ = lazyexports.forwarding(__name__, "khook_core.silencing.occurrences", _OCCURRENCES)


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
    from khook_core.silencing.occurrences import MaintenanceWindow, Schedule  # only with a window

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
