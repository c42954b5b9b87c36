"""Parsing of times: timestamps in event payloads (RFC 3339, Kubernetes MicroTime) and the
durations of configuration (hook files, budgets.yaml, environment variables, CLI flags).

Durations are read in one place, so ``dedupWindow: 1h30m``, ``KAGENT_API_TIMEOUT=2m`` and
``--since 30m`` accept the same forms: a Go duration (``1h30m``, ``500ms``), one number with a
unit (``90s``, ``10m``) or plain seconds (``600``, or a YAML number).
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta
from typing import Final

from khook_core.errors import InvalidEventError


def parse_time(value: object, field: str) -> datetime | None:
    """An aware datetime from an RFC 3339 string; None for null, empty and Go's zero time.

    Raises:
        InvalidEventError: the value is present but not a valid timestamp (names ``field``).
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidEventError(f"{field} must be an RFC 3339 string", field=field)
    try:
        return _parse_iso(value)
    except ValueError as exc:
        raise InvalidEventError(
            f"{field} is not an RFC 3339 timestamp: {value!r}", field=field
        ) from exc


@functools.lru_cache(maxsize=2048)
def _parse_iso(value: str) -> datetime | None:
    """Cached: in a storm most events share a handful of distinct timestamps."""
    if value.startswith("0001-01-01"):
        return None  # Go's zero time.Time: "not set"
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@functools.lru_cache(maxsize=1024)
def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with whole seconds, as khook renders ``{{.Timestamp}}``.

    Cached: every firing formats its event's times, and in a storm they repeat."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_GO_DURATION: Final = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_PLAIN_SECONDS: Final = re.compile(r"\d+(?:\.\d*)?|\.\d+")
_UNIT_SECONDS: Final = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
DURATION_FORMS: Final = "Go syntax such as 90s, 10m, 1h30m, 500ms, or plain seconds"


def parse_seconds(value: str | float | int) -> float:
    """Seconds from a duration: ``"1h30m"``, ``"500ms"``, ``"10m"``, ``"600"`` or a number.

    A number (a YAML or JSON one) is seconds as given; text has no sign and no exponent, so a
    negative or non-finite duration can only come from a number, where the caller's own bounds
    apply.

    Raises:
        ValueError: not a duration (the message names the value and the accepted forms).
    """
    if isinstance(value, int | float):
        return float(value)
    text = value.strip()
    if _PLAIN_SECONDS.fullmatch(text):
        return float(text)
    pos, total = 0, 0.0
    for match in _GO_DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match[1]) * _UNIT_SECONDS[match[2]]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(f"invalid duration {value!r} ({DURATION_FORMS})")
    return total


def parse_duration(value: str | float | int) -> timedelta:
    """``parse_seconds`` as a ``timedelta``.

    Raises:
        ValueError: not a duration.
    """
    return timedelta(seconds=parse_seconds(value))


def seconds_or_value(value: object) -> object:
    """A pydantic ``BeforeValidator``: text becomes seconds, anything else is left to the field.

    Raises:
        ValueError: text that is not a duration.
    """
    return parse_seconds(value) if isinstance(value, str) else value
