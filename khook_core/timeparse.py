"""Parsing of the timestamps found in event payloads (RFC 3339, Kubernetes MicroTime)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

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


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with whole seconds, as khook renders ``{{.Timestamp}}``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
