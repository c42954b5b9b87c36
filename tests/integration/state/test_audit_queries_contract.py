"""The AuditQueries contract (the console's reads), run against every backend (conftest.py)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from khook_core.state.base import (
    DedupKey,
    Firing,
    FiringFilter,
    InvalidCursorError,
    StateStore,
    bucket_start,
)
from khook_core.storm.records import Backlog, BacklogKey, BacklogKind, Summary

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def firing(n: int, *, at: datetime, **changes: str) -> Firing:
    values = {
        "hook": "shop/web",
        "event_type": "pod-restart",
        "source": "kubernetes",
        "resource": "shop/Pod/web-0",
        "outcome": "dispatched",
    }
    values.update(changes)
    return Firing(
        key=DedupKey(f"k{n}"),
        hook=values["hook"],
        event_id=f"e{n}",
        event_type=values["event_type"],
        source=values["source"],
        resource=values["resource"],
        agent="kagent/k8s",
        prompt_hash="h",
        outcome=values["outcome"],
        at=at,
    )


GRID = [
    # (minute, hook, source, event_type, resource, outcome)
    (0, "shop/web", "kubernetes", "pod-restart", "shop/Pod/web-0", "dispatched"),
    (1, "shop/web", "kubernetes", "oom-kill", "shop/Pod/web-1", "coalesced"),
    (2, "ops/alerts", "alertmanager", "alert-firing", "/Alert/HighLoad", "dispatched"),
    (3, "ops/alerts", "alertmanager", "alert-firing", "/Alert/HighLoad", "failed:unreachable"),
    (4, "shop/web", "webhook", "pod-restart", "/Webhook/x", "suppressed:budget"),
]


def record_grid(store: StateStore) -> None:
    for n, (minute, hook, source, kind, resource, outcome) in enumerate(GRID):
        store.record(
            firing(
                n,
                at=T0 + timedelta(minutes=minute),
                hook=hook,
                source=source,
                event_type=kind,
                resource=resource,
                outcome=outcome,
            )
        )


def ids(store: StateStore, where: FiringFilter) -> list[str]:
    return [f.event_id for f in store.query_firings(where=where).firings]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (FiringFilter(), ["e4", "e3", "e2", "e1", "e0"]),
        (FiringFilter(hook="ops/alerts"), ["e3", "e2"]),
        (FiringFilter(source="webhook"), ["e4"]),
        (FiringFilter(event_type="pod-restart"), ["e4", "e0"]),
        (FiringFilter(resource="shop/Pod/web-1"), ["e1"]),
        (FiringFilter(outcome="dispatched"), ["e2", "e0"]),
        (FiringFilter(outcome="failed:unreachable"), ["e3"]),
        (FiringFilter(since=T0 + timedelta(minutes=3)), ["e4", "e3"]),
        (FiringFilter(until=T0 + timedelta(minutes=2)), ["e1", "e0"]),
        (
            FiringFilter(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=4)),
            ["e3", "e2", "e1"],
        ),
        (FiringFilter(hook="shop/web", event_type="pod-restart", source="kubernetes"), ["e0"]),
        (FiringFilter(hook="nobody/none"), []),
    ],
)
def test_every_filter_narrows_the_records_to_exactly_the_matching_ones(
    store: StateStore, where: FiringFilter, expected: list[str]
):
    record_grid(store)
    assert ids(store, where) == expected


def test_pages_cover_every_record_once_newest_first_with_equal_times_in_a_fixed_order(
    store: StateStore,
):
    for n in range(7):  # three pairs of equal times: the tie-break decides page edges
        store.record(firing(n, at=T0 + timedelta(seconds=n // 2)))
    seen: list[Firing] = []
    cursor = None
    pages = 0
    while True:
        page = store.query_firings(where=FiringFilter(), cursor=cursor, limit=2)
        seen.extend(page.firings)
        pages += 1
        if page.cursor is None:
            break
        cursor = page.cursor
    assert pages == 4
    assert sorted(f.event_id for f in seen) == [f"e{n}" for n in range(7)]
    times = [f.at for f in seen]
    assert times == sorted(times, reverse=True)
    # The same query pages the same way again.
    again = store.query_firings(where=FiringFilter(), limit=3).firings
    assert [f.event_id for f in again] == [f.event_id for f in seen[:3]]


def test_a_page_of_exactly_the_remaining_records_has_no_next_cursor(store: StateStore):
    for n in range(4):
        store.record(firing(n, at=T0 + timedelta(seconds=n)))
    first = store.query_firings(where=FiringFilter(), limit=2)
    last = store.query_firings(where=FiringFilter(), cursor=first.cursor, limit=2)
    assert [f.event_id for f in last.firings] == ["e1", "e0"]
    assert last.cursor is None
    assert store.query_firings(where=FiringFilter(), limit=0).firings == []


def test_paging_under_concurrent_writes_returns_each_earlier_record_exactly_once(
    store: StateStore,
):
    for n in range(30):
        store.record(firing(n, at=T0 + timedelta(seconds=n)))
    stop = threading.Event()
    written: list[int] = []

    def write_newer() -> None:
        n = 1000
        while not stop.is_set() and n < 1200:
            store.record(firing(n, at=T0 + timedelta(hours=1, seconds=n)))
            written.append(n)
            n += 1

    writer = threading.Thread(target=write_newer)
    writer.start()
    try:
        first = store.query_firings(where=FiringFilter(until=T0 + timedelta(hours=2)), limit=4)
        seen = list(first.firings)
        cursor = first.cursor
        while cursor is not None:
            page = store.query_firings(
                where=FiringFilter(until=T0 + timedelta(hours=2)), cursor=cursor, limit=4
            )
            seen.extend(page.firings)
            cursor = page.cursor
    finally:
        stop.set()
        writer.join(30)
    assert written, "the writer never ran beside the reader"
    earlier = [f.event_id for f in seen if f.at < T0 + timedelta(hours=1)]
    assert earlier == [f"e{n}" for n in reversed(range(30))]
    assert len({f.event_id for f in seen}) == len(seen)


def test_a_cursor_the_store_never_issued_is_refused(store: StateStore):
    for bad in ("not-a-cursor", "W10", "WyJ4Il0"):
        with pytest.raises(InvalidCursorError):
            store.query_firings(where=FiringFilter(), cursor=bad)


def test_counts_per_bucket_hook_source_type_and_outcome(store: StateStore):
    record_grid(store)
    store.record(
        firing(
            9,
            at=T0 + timedelta(minutes=4, seconds=30),
            source="webhook",
            event_type="pod-restart",
            resource="/Webhook/y",
            outcome="suppressed:budget",
        )
    )
    counts = store.count_firings(where=FiringFilter(), bucket=timedelta(minutes=2))
    got = [(c.bucket - T0, c.hook, c.source, c.event_type, c.outcome, c.count) for c in counts]
    m = timedelta(minutes=1)
    assert got == [
        (0 * m, "shop/web", "kubernetes", "oom-kill", "coalesced", 1),
        (0 * m, "shop/web", "kubernetes", "pod-restart", "dispatched", 1),
        (2 * m, "ops/alerts", "alertmanager", "alert-firing", "dispatched", 1),
        (2 * m, "ops/alerts", "alertmanager", "alert-firing", "failed:unreachable", 1),
        (4 * m, "shop/web", "webhook", "pod-restart", "suppressed:budget", 2),
    ]
    assert all(c.bucket.tzinfo is not None for c in counts)
    narrowed = store.count_firings(
        where=FiringFilter(hook="ops/alerts", since=T0 + timedelta(minutes=3)),
        bucket=timedelta(hours=1),
    )
    assert [(c.bucket, c.outcome, c.count) for c in narrowed] == [(T0, "failed:unreachable", 1)]


def summary(count: int, at: datetime) -> Summary:
    return Summary(count=count, first=at, last=at, resources=("shop/Pod/web-0",))


def test_backlogs_list_the_held_back_summaries_by_key_and_not_the_taken_ones(store: StateStore):
    web = BacklogKey(BacklogKind.BUDGET, "shop/web|pod-restart")
    api = BacklogKey(BacklogKind.GROUP, "shop/api|pod-restart|shop/api")
    db = BacklogKey(BacklogKind.BUDGET, "shop/db|oom-kill")
    store.add_backlog(key=web, backlog=Backlog(summary(2, T0), "shop/web", "{}"))
    store.add_backlog(key=api, backlog=Backlog(summary(1, T0), "shop/api", "{}"))
    store.add_backlog(key=api, backlog=Backlog(summary(4, T0), "shop/api", "{}"))
    store.add_backlog(key=db, backlog=Backlog(summary(1, T0), "shop/db", "{}"))
    store.take_backlog(key=db)
    got = [(key, b.hook, b.summary.count) for key, b in store.backlogs(limit=10)]
    assert got == sorted(
        [(api, "shop/api", 5), (web, "shop/web", 2)], key=lambda row: row[0].stored
    )
    assert len(store.backlogs(limit=1)) == 1


def test_circuits_list_failures_and_state_at_now(store: StateStore):
    store.record_failure(key="c|a", threshold=2, cool_down=timedelta(minutes=5), now=T0)
    store.record_failure(key="c|a", threshold=2, cool_down=timedelta(minutes=5), now=T0)
    store.record_failure(key="c|b", threshold=5, cool_down=timedelta(minutes=5), now=T0)
    store.record_failure(key="c|c", threshold=5, cool_down=timedelta(minutes=5), now=T0)
    store.record_success(key="c|c")
    got = store.circuits(now=T0 + timedelta(minutes=1), limit=10)
    assert [(c.key, c.failures, c.state) for c in got] == [
        ("c|a", 2, "open"),
        ("c|b", 1, "closed"),
    ]
    assert got[0].open_until == T0 + timedelta(minutes=5)
    later = store.circuits(now=T0 + timedelta(minutes=6), limit=1)
    assert [(c.key, c.state) for c in later] == [("c|a", "half-open")]


def test_firings_filter_by_the_incident_they_opened_or_joined(store: StateStore):
    base = firing(0, at=T0)
    opened = Firing(
        **{
            **base.__dict__,
            "key": DedupKey("k-open"),
            "incident": "inc-1",
            "outcome": "opened:incident",
        }
    )
    joined = Firing(
        **{
            **base.__dict__,
            "key": DedupKey("k-join"),
            "incident": "inc-1",
            "outcome": "joined:incident",
            "at": T0 + timedelta(minutes=1),
        }
    )
    other = Firing(**{**base.__dict__, "key": DedupKey("k-other"), "incident": "inc-2"})
    for record in (base, opened, joined, other):
        store.record(record)

    page = store.query_firings(where=FiringFilter(incident="inc-1"), limit=10)

    assert [(f.outcome, f.incident) for f in page.firings] == [
        ("joined:incident", "inc-1"),
        ("opened:incident", "inc-1"),
    ]
    assert [f.incident for f in store.firings(limit=10)].count("") == 1


SPREAD = [
    # (seconds after T0, hook, source, event_type, outcome): whole minutes apart and within one
    (0, "shop/web", "kubernetes", "pod-restart", "dispatched"),
    (15, "shop/web", "kubernetes", "pod-restart", "dispatched"),
    (59, "shop/web", "kubernetes", "oom-kill", "coalesced"),
    (60, "ops/alerts", "alertmanager", "alert-firing", "dispatched"),
    (61, "ops/alerts", "alertmanager", "alert-firing", "failed:unreachable"),
    (150, "shop/web", "webhook", "pod-restart", "suppressed:budget"),
    (179, "shop/web", "kubernetes", "pod-restart", "dispatched"),
    (180, 'odd/"name"', "kafka", "lag,high", "failed:transient"),
    (600, "shop/web", "kubernetes", "pod-restart", "dispatched"),
    (3599, "ops/alerts", "alertmanager", "alert-firing", "dispatched"),
    (3600, "shop/web", "kubernetes", "pod-restart", "coalesced"),
    (7300, "ops/alerts", "alertmanager", "alert-firing", "dispatched"),
]
S = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("where", "bucket"),
    [
        (FiringFilter(), timedelta(minutes=1)),
        (FiringFilter(), timedelta(minutes=30)),
        (FiringFilter(since=T0 + 30 * S, until=T0 + 3650 * S), timedelta(minutes=2)),
        (FiringFilter(since=T0 + 60 * S, until=T0 + 180 * S), timedelta(minutes=1)),
        (FiringFilter(since=T0 + 59 * S, until=T0 + 61 * S), timedelta(hours=1)),
        (FiringFilter(since=T0 - 3600 * S), timedelta(hours=1)),
        (FiringFilter(until=T0 + 3600 * S), timedelta(minutes=5)),
        (FiringFilter(hook="shop/web", since=T0 + S), timedelta(minutes=10)),
        (FiringFilter(source="alertmanager", outcome="dispatched"), timedelta(hours=1)),
        (FiringFilter(event_type="lag,high"), timedelta(minutes=3)),
        (FiringFilter(hook='odd/"name"', outcome="failed:transient"), timedelta(days=1)),
        (FiringFilter(resource="shop/Pod/web-0"), timedelta(minutes=1)),
        (FiringFilter(), timedelta(seconds=45)),
        (FiringFilter(), timedelta(seconds=90)),
    ],
)
def test_counts_are_those_of_every_matching_record(
    store: StateStore, where: FiringFilter, bucket: timedelta
):
    """Whatever a store counts from (records, or counters kept beside them), the counts are
    those of the records themselves: partial minutes at either end of the range, a bucket
    that is not a whole number of minutes, filters on every field, odd text in the fields."""
    records = [
        firing(n, at=T0 + seconds * S, hook=hook, source=src, event_type=kind, outcome=outcome)
        for n, (seconds, hook, src, kind, outcome) in enumerate(SPREAD)
    ]
    for record in records:
        store.record(record)

    expected: dict[tuple[datetime, str, str, str, str], int] = {}
    for r in records:
        if where.matches(r):
            group = (bucket_start(r.at, bucket), r.hook, r.source, r.event_type, r.outcome)
            expected[group] = expected.get(group, 0) + 1
    counts = store.count_firings(where=where, bucket=bucket)
    assert [(c.bucket, c.hook, c.source, c.event_type, c.outcome, c.count) for c in counts] == [
        (*group, n) for group, n in sorted(expected.items())
    ]
