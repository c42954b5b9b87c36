"""Query strings into store filters: every parameter checked, every refusal a 400 naming it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from khook_core.errors import InvalidEventError
from khook_core.state.base import FiringFilter

DEFAULT_PAGE: Final = 50
MAX_PAGE: Final = 500
"""A page the dashboard's table shows at once, and a bound on one request's work."""
DEFAULT_RANGE: Final = timedelta(hours=24)
"""Counts and health cover the last day unless asked otherwise: the dashboard's default view."""
MAX_BUCKETS: Final = 2_000
"""Buckets one counts request may ask for (a week in 5-minute buckets): past that a chart is
unreadable and the answer needlessly large."""
FILTERS: Final = {
    "hook": "hook",
    "source": "source",
    "type": "event_type",
    "resource": "resource",
    "decision": "outcome",
    "incident": "incident",
}
"""Query parameter → ``FiringFilter`` field (the API speaks of decisions and types)."""


def bad(param: str, message: str) -> InvalidEventError:
    return InvalidEventError(f"query parameter {param!r}: {message}", field=param, status=400)


def parse_time(args: Mapping[str, str], param: str) -> datetime | None:
    """An RFC 3339 time (``2026-01-05T10:00:00Z``), which must name its offset."""
    text = args.get(param)
    if text is None or text == "":
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise bad(param, f"{text!r} is not an RFC 3339 time (2026-01-05T10:00:00Z)") from None
    if value.tzinfo is None:
        raise bad(param, f"{text!r} has no offset; add Z or +HH:MM")
    return value


def parse_int(args: Mapping[str, str], param: str, default: int, low: int, high: int) -> int:
    text = args.get(param)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise bad(param, f"{text!r} is not a whole number") from None
    if not low <= value <= high:
        raise bad(param, f"{value} is outside {low}..{high}")
    return value


def firing_filter(args: Mapping[str, str], *, default_since: datetime | None) -> FiringFilter:
    """The filter of ``since``, ``until`` and the ``FILTERS`` parameters."""
    since = parse_time(args, "since") or default_since
    until = parse_time(args, "until")
    if since is not None and until is not None and until <= since:
        raise bad("until", "must be later than 'since'")
    fields = {field: args[param] for param, field in FILTERS.items() if args.get(param)}
    return FiringFilter(since=since, until=until, **fields)


@dataclass(frozen=True)
class CountsQuery:
    """A counts request: a bounded time range cut into buckets."""

    where: FiringFilter
    since: datetime
    until: datetime
    bucket: timedelta


def counts_query(args: Mapping[str, str], now: datetime) -> CountsQuery:
    """``since`` defaults to a day before ``until``, ``until`` to now; ``bucket`` in seconds
    (default: the range in about 48 bars, at least a minute)."""
    until = parse_time(args, "until") or now
    since = parse_time(args, "since") or until - DEFAULT_RANGE
    if until <= since:
        raise bad("until", "must be later than 'since'")
    span = (until - since).total_seconds()
    default_bucket = max(60, int(span // 48 // 60 * 60))
    bucket = parse_int(args, "bucket", default_bucket, 1, 366 * 86_400)
    if span / bucket > MAX_BUCKETS:
        raise bad("bucket", f"{int(span // bucket)} buckets; at most {MAX_BUCKETS} per request")
    fields = {field: args[param] for param, field in FILTERS.items() if args.get(param)}
    where = FiringFilter(since=since, until=until, **fields)
    return CountsQuery(where, since, until, timedelta(seconds=bucket))


def workload_param(args: Mapping[str, str]) -> str | None:
    """``workload=NAMESPACE/KIND/NAME`` (``Workload.ref()``), or None when not given."""
    workload = args.get("workload")
    if not workload:
        return None
    parts = workload.split("/")
    if len(parts) != 3 or not all(parts):
        raise bad("workload", "expected NAMESPACE/KIND/NAME (shop/Deployment/checkout)")
    return workload
