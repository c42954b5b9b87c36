"""Firestore's per-minute audit counters (``audit_counts``): written in the record's batch,
ten minutes to a document, kept as long as the records they count, read for whole minutes,
and never trusted for records written before counting began."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from khook_core.state import audit_counts, audit_fields
from khook_core.state.base import DedupKey, Firing, FiringFilter
from khook_core.state.firestore import (
    COUNTER_SHARDS,
    COUNTING_SINCE,
    FIRING_COUNTS,
    FIRINGS,
    FirestoreStateStore,
)

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def firing(n: int, at: datetime, outcome: str = "dispatched") -> Firing:
    return Firing(
        key=DedupKey(f"k{n}"),
        hook="shop/web",
        event_id=f"e{n}",
        event_type="pod-restart",
        source="kubernetes",
        resource="shop/Pod/web-0",
        agent="kagent/k8s",
        prompt_hash="h",
        outcome=outcome,
        at=at,
    )


def counters(store: FirestoreStateStore) -> list[dict[str, object]]:
    return [
        snap.to_dict() or {}
        for snap in store._client.collection(FIRING_COUNTS).stream()
        if snap.id != COUNTING_SINCE
    ]


def test_each_record_is_counted_in_its_minute_and_kept_as_long_as_the_records(
    firestore_store: FirestoreStateStore,
):
    records = [firing(n, T0 + n * timedelta(seconds=20)) for n in range(9)]  # 3 minutes
    for record in records:
        firestore_store.record(record)

    docs = counters(firestore_store)
    per_minute: dict[datetime, int] = {}
    for doc in docs:
        start, expire_at, counts = doc["bucket"], doc["expire_at"], doc["counts"]
        assert isinstance(start, datetime)
        assert isinstance(expire_at, datetime)
        assert isinstance(counts, dict)
        for minute_key, groups in counts.items():
            minute = audit_counts.parse_minute(minute_key)
            assert minute is not None
            assert start <= minute < start + audit_counts.COUNTER_DOCUMENT
            for key, n in groups.items():
                group = audit_counts.parse_group(key)
                assert group == ("shop/web", "kubernetes", "pod-restart", "dispatched")
                per_minute[minute] = per_minute.get(minute, 0) + n
        # The counter outlives every record it counts (TTL on both: counts stay true).
        assert expire_at >= start + audit_counts.COUNTER_DOCUMENT + firestore_store.audit_retention
    assert per_minute == {T0: 3, T0 + MINUTE: 3, T0 + 2 * MINUTE: 3}
    assert len(docs) <= COUNTER_SHARDS  # one document holds ten minutes (per shard)


def test_whole_minutes_are_counted_from_the_counters(firestore_store: FirestoreStateStore):
    for n in range(6):
        firestore_store.record(firing(n, T0 + n * timedelta(seconds=30)))  # minutes 0-2
    # Without the records, only the counters can still say what minutes 1 and 2 held.
    client = firestore_store._client
    for snap in client.collection(FIRINGS).stream():
        client.collection(FIRINGS).document(snap.id).delete()

    counts = firestore_store.count_firings(where=FiringFilter(), bucket=MINUTE)

    # Minute 0 is before counting began (the first record's minute): read from the records.
    assert [(c.bucket, c.count) for c in counts] == [(T0 + MINUTE, 2), (T0 + 2 * MINUTE, 2)]


def test_records_written_before_counting_began_are_counted_from_the_records(
    firestore_store: FirestoreStateStore,
):
    client = firestore_store._client
    for n in range(4):  # as a version without counters wrote them
        doc = audit_fields.to_document(firing(n, T0 + n * MINUTE, outcome="coalesced"))
        client.collection(FIRINGS).document().create(doc)
    for n in range(4, 7):
        firestore_store.record(firing(n, T0 + n * MINUTE))

    counts = firestore_store.count_firings(where=FiringFilter(since=T0), bucket=timedelta(hours=1))

    assert [(c.outcome, c.count) for c in counts] == [("coalesced", 4), ("dispatched", 3)]
    again = FirestoreStateStore.from_url("firestore")  # another instance: the same start
    try:
        again.record(firing(9, T0 + 9 * MINUTE))
        assert [
            (c.outcome, c.count)
            for c in again.count_firings(where=FiringFilter(), bucket=timedelta(hours=1))
        ] == [("coalesced", 4), ("dispatched", 4)]
    finally:
        again.close()
