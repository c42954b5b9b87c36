"""Per-minute counters of the audit trail, for stores that cannot GROUP BY (Firestore).

Counting a day of audit records by streaming them takes seconds (one read per record). So the
store that needs it keeps, beside each record, a counter per minute (``COUNTER_BUCKET``) and
hook, source, event type and outcome, written with the record, the counters of ten minutes
(``COUNTER_DOCUMENT``) in one document (a map of minutes, each a map of groups);
``count_firings`` then reads 144 documents a day (per shard) instead of every record. This
module is the store-neutral part: the counters' keys, and which part of a query they can
answer exactly.

Counters answer a query when it filters only on counted fields (not ``resource`` or
``incident``) and its bucket is a whole number of minutes, for the whole minutes of its range
since counting began; the rest (a partial minute at either end, and what came before the
counters existed) is counted from the records themselves, so the result is the same as
counting every record.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from khook_core.state.base import Firing, FiringFilter, bucket_start

COUNTER_BUCKET: Final = timedelta(minutes=1)
"""The counters' resolution: a query's bucket must be a whole number of these."""
COUNTER_DOCUMENT: Final = timedelta(minutes=10)
"""The minutes whose counters share a document: fewer documents to read, while a document's
entries (ten minutes' hooks x sources x types x outcomes) stay far below Firestore's limits."""
COUNTED: Final = ("hook", "source", "event_type", "outcome")
"""The record's fields a counter is kept per, in the order of ``FiringCount``."""

Group = tuple[str, str, str, str]


def document_start(at: datetime) -> datetime:
    """The first minute of the counter document holding ``at``'s counter."""
    return bucket_start(at, COUNTER_DOCUMENT)


def minute_key(firing: Firing) -> str:
    """The counters of ``firing``'s minute: its start in epoch seconds."""
    return str(int(bucket_start(firing.at, COUNTER_BUCKET).timestamp()))


def group_key(firing: Firing) -> str:
    """The counter of ``firing``'s hook, source, event type and outcome within its minute: a
    JSON array, so any text in any field stays unambiguous."""
    return json.dumps([firing.hook, firing.source, firing.event_type, firing.outcome])


def parse_minute(key: str) -> datetime | None:
    """The minute of a ``minute_key``; None for a key this version did not write."""
    return datetime.fromtimestamp(int(key), UTC) if key.isdigit() else None


def parse_group(key: str) -> Group | None:
    """The fields of a ``group_key``; None for a key this version did not write."""
    try:
        fields = json.loads(key)
    except ValueError:
        return None
    if not isinstance(fields, list) or len(fields) != len(COUNTED):
        return None
    hook, source, event_type, outcome = (str(f) for f in fields)
    return hook, source, event_type, outcome


def matches(group: Group, where: FiringFilter) -> bool:
    """``where``'s equality filters applied to a counter's fields (``plan`` made sure there
    is none on a field that is not counted)."""
    equalities = where.equalities()
    return all(
        equalities.get(name, value) == value for name, value in zip(COUNTED, group, strict=True)
    )


@dataclass(frozen=True)
class Plan:
    """How to count a query: ``counters`` for whole minutes in [start, end) (``end`` None:
    open), the records themselves in each of ``streamed`` (the query with its time range
    narrowed)."""

    start: datetime
    end: datetime | None
    streamed: tuple[FiringFilter, ...]


def plan(where: FiringFilter, bucket: timedelta, counted_from: datetime | None) -> Plan | None:
    """Which part of ``where`` the counters can count; None: none of it (count the records).

    Args:
        counted_from: the first minute every record of which has a counter (None: counting
            has not begun).
    """
    if counted_from is None or where.resource is not None or where.incident is not None:
        return None
    if bucket < COUNTER_BUCKET or bucket % COUNTER_BUCKET:
        return None  # a minute's counter must fall in one bucket
    start = counted_from
    if where.since is not None:
        start = max(start, _ceil(where.since))
    end = None if where.until is None else bucket_start(where.until, COUNTER_BUCKET)
    if end is not None and end <= start:
        return None  # not one whole minute of counters in the range
    streamed = []
    if where.since is None or where.since < start:
        streamed.append(_narrowed(where, where.since, start))
    if end is not None and where.until is not None and end < where.until:
        streamed.append(_narrowed(where, end, where.until))
    return Plan(start, end, tuple(streamed))


def _ceil(at: datetime) -> datetime:
    floor = bucket_start(at, COUNTER_BUCKET)
    return floor if floor == at else floor + COUNTER_BUCKET


def _narrowed(where: FiringFilter, since: datetime | None, until: datetime) -> FiringFilter:
    return dataclasses.replace(where, since=since, until=until)
