"""Moving recorded payloads to the present, so freshness windows accept them.

The kubernetes source drops Events whose last occurrence is older than 15 minutes, and the
bundled samples were recorded on 2026-01-05. ``shift_to_now`` moves every RFC 3339 timestamp
of a set of payloads by the same amount, so the newest becomes now and the gaps between them
(a stale sample stays stale) are kept. Each string keeps its format: precision and zone.
Sentinels such as Alertmanager's ``0001-01-01T00:00:00Z`` are left alone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

RFC3339: Final = re.compile(
    r"^(\d{4}-\d{2}-\d{2})([Tt ])(\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$"
)
FLOOR: Final = datetime(1971, 1, 1, tzinfo=UTC)
"""Earlier values are sentinels ("no end time"), not moments to move."""


def parse(text: str) -> datetime | None:
    """The instant of an RFC 3339 string at or after ``FLOOR``, else None."""
    match = RFC3339.match(text)
    if match is None:
        return None
    day, _, clock, fraction, zone = match.groups()
    micro = (fraction or "").ljust(6, "0")[:6]
    offset = "+00:00" if zone in ("Z", "z") else zone
    try:
        moment = datetime.fromisoformat(f"{day}T{clock}.{micro}{offset}")
    except ValueError:
        return None
    return moment if moment >= FLOOR else None


def format_like(original: str, moment: datetime) -> str:
    """``moment`` written the way ``original`` was (separator, fraction digits, zone)."""
    match = RFC3339.match(original)
    assert match is not None
    _, separator, _, fraction, zone = match.groups()
    if zone in ("Z", "z"):
        local = moment.astimezone(UTC)
    else:
        sign = -1 if zone[0] == "-" else 1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        local = moment.astimezone(timezone(sign * timedelta(hours=hours, minutes=minutes)))
    text = local.strftime(f"%Y-%m-%d{separator}%H:%M:%S")
    if fraction:
        text += "." + f"{local.microsecond:06d}".ljust(len(fraction), "0")[: len(fraction)]
    return text + zone


def newest(value: Any) -> datetime | None:
    """The latest RFC 3339 instant anywhere inside ``value`` (strings at any depth)."""
    found: datetime | None = None
    for text in _strings(value):
        moment = parse(text)
        if moment is not None and (found is None or moment > found):
            found = moment
    return found


def shift(value: Any, delta: timedelta) -> Any:
    """A copy of ``value`` with every RFC 3339 string moved by ``delta``."""
    if isinstance(value, str):
        moment = parse(value)
        return value if moment is None else format_like(value, moment + delta)
    if isinstance(value, list):
        return [shift(item, delta) for item in value]
    if isinstance(value, dict):
        return {key: shift(item, delta) for key, item in value.items()}
    return value


def shift_to_now(payloads: list[Any], now: datetime | None = None) -> tuple[list[Any], timedelta]:
    """Every payload moved by the one delta that makes the newest timestamp ``now``."""
    latest = max((m for m in map(newest, payloads) if m is not None), default=None)
    if latest is None:
        return payloads, timedelta(0)
    delta = (now or datetime.now(UTC)) - latest
    return [shift(p, delta) for p in payloads], delta


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    return []
