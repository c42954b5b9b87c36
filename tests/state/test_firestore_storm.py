"""Storm-control primitives of FirestoreStateStore on the emulator: slots, leases, backlog,
circuits, alone and under concurrent callers, and a storm through the pipeline."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from khook_core.dispatch.dryrun import DryRunDispatcher
from khook_core.runtime import Clock, Runtime
from khook_core.settings import Settings
from khook_core.state.firestore import FirestoreStateStore
from khook_core.storm.records import Backlog, BacklogKey, BacklogKind, Summary
from tests.storm import (
    AGENT_RUNS_PER_HOUR,
    START,
    check_shared_storm,
    check_storm,
    run_storm,
    run_storm_processes,
    storm_config,
    storm_events,
)

pytestmark = pytest.mark.integration

NOW = datetime(2026, 1, 5, 10, 0, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)
LATER = NOW + timedelta(minutes=1)


def in_threads(n: int, body: Callable[[FirestoreStateStore], list[bool]]) -> list[bool]:
    """Run ``body`` in ``n`` threads, each with its own client, lined up on a barrier."""
    results: list[bool] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def run() -> None:
        store = FirestoreStateStore.from_url("firestore")
        try:
            barrier.wait()
            results.extend(body(store))
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


def summary(count: int, resource: str, at: datetime = NOW) -> Backlog:
    return Backlog(
        Summary(count=count, first=at, last=at, resources=(resource,), reasons=("BackOff",)),
        hook="shop/web",
        event=f'{{"resource": "{resource}"}}',
    )


def test_slots_count_to_the_limit_within_one_window(firestore_store: FirestoreStateStore):
    take = firestore_store.take_slot
    assert [take(key="rate|hook|a", limit=3, window=HOUR, now=NOW) for _ in range(4)] == [
        True,
        True,
        True,
        False,
    ]
    assert take(key="rate|hook|a", limit=3, window=HOUR, now=NOW + HOUR)  # the next window
    assert take(key="rate|hook|b", limit=3, window=HOUR, now=NOW)  # another key
    assert not take(key="rate|hook|c", limit=0, window=HOUR, now=NOW)


def test_concurrent_slot_takers_never_exceed_the_limit(firestore_store: FirestoreStateStore):
    got = in_threads(
        4,
        lambda store: [
            store.take_slot(key="rate|agent|x", limit=7, window=HOUR, now=NOW) for _ in range(6)
        ],
    )
    assert got.count(True) == 7


def test_leases_cap_concurrent_runs_until_they_lapse(firestore_store: FirestoreStateStore):
    ttl = timedelta(minutes=5)
    acquire = firestore_store.acquire_lease
    leases = [acquire(scope="runs", cap=2, ttl=ttl, now=NOW) for _ in range(3)]
    assert [bool(lease) for lease in leases] == [True, True, False]
    assert acquire(scope="runs", cap=2, ttl=ttl, now=NOW + ttl)
    assert acquire(scope="none", cap=0, ttl=ttl, now=NOW) is None


def test_a_released_lease_is_free_again_and_a_retaken_one_is_not_released(
    firestore_store: FirestoreStateStore,
):
    ttl = timedelta(minutes=5)
    first = firestore_store.acquire_lease(scope="runs", cap=1, ttl=ttl, now=NOW)
    assert first is not None
    firestore_store.release_lease(scope="runs", lease=first)
    second = firestore_store.acquire_lease(scope="runs", cap=1, ttl=ttl, now=NOW)
    assert second is not None
    firestore_store.release_lease(scope="runs", lease=first)  # not the holder any more
    assert firestore_store.acquire_lease(scope="runs", cap=1, ttl=ttl, now=NOW) is None
    # Lapsed and retaken by another: the old holder's release leaves the new lease alone.
    third = firestore_store.acquire_lease(scope="runs", cap=1, ttl=ttl, now=NOW + ttl)
    assert third is not None
    firestore_store.release_lease(scope="runs", lease=second)
    assert firestore_store.acquire_lease(scope="runs", cap=1, ttl=ttl, now=NOW + ttl) is None


def test_a_returned_slot_can_be_taken_again(firestore_store: FirestoreStateStore):
    take = firestore_store.take_slot
    assert take(key="rate|hook|r", limit=1, window=HOUR, now=NOW)
    assert not take(key="rate|hook|r", limit=1, window=HOUR, now=NOW)
    firestore_store.return_slot(key="rate|hook|r", window=HOUR, now=NOW)
    assert take(key="rate|hook|r", limit=1, window=HOUR, now=NOW)
    firestore_store.return_slot(key="rate|hook|never", window=HOUR, now=NOW)  # nothing to return


def test_concurrent_lease_takers_get_exactly_the_cap(firestore_store: FirestoreStateStore):
    got = in_threads(
        4,
        lambda store: [
            store.acquire_lease(scope="runs", cap=3, ttl=HOUR, now=NOW) is not None
            for _ in range(4)
        ],
    )
    assert got.count(True) == 3


GROUP_G = BacklogKey(BacklogKind.GROUP, "g")  # stored as "coalesce|g"
BUDGET_OTHER = BacklogKey(BacklogKind.BUDGET, "other")  # stored as "budget|other"
BUDGET_HOT = BacklogKey(BacklogKind.BUDGET, "hot")


def test_backlog_merges_and_is_taken_once(firestore_store: FirestoreStateStore):
    firestore_store.add_backlog(key=GROUP_G, backlog=summary(2, "shop/Pod/b", LATER))
    firestore_store.add_backlog(key=GROUP_G, backlog=summary(3, "shop/Pod/a"))
    firestore_store.add_backlog(key=BUDGET_OTHER, backlog=summary(1, "shop/Pod/c"))
    assert sorted(firestore_store.backlog_keys(limit=10)) == [BUDGET_OTHER, GROUP_G]
    assert len(firestore_store.backlog_keys(limit=1)) == 1

    taken = firestore_store.take_backlog(key=GROUP_G)

    assert taken == Backlog(
        Summary(
            count=5,
            first=NOW,
            last=LATER,
            resources=("shop/Pod/b", "shop/Pod/a"),
            reasons=("BackOff",),
        ),
        hook="shop/web",
        event='{"resource": "shop/Pod/b"}',  # the latest event, not the last one added
    )
    assert firestore_store.take_backlog(key=GROUP_G) is None
    assert firestore_store.backlog_keys(limit=10) == [BUDGET_OTHER]


def test_a_backlog_written_before_its_kind_was_stored_is_listed_by_its_key(
    firestore_store: FirestoreStateStore,
):
    legacy = "coalesce|shop/web|pod-restart|shop/web"
    client = firestore_store._client  # the store's own client, to write as an older version did
    client.collection("backlog").document(FirestoreStateStore.doc_id(legacy)).set(
        {"key": legacy, "pending": True, **summary(2, "shop/Pod/b").to_json()}
    )
    group = BacklogKey(BacklogKind.GROUP, "shop/web|pod-restart|shop/web")

    assert firestore_store.backlog_keys(limit=10) == [group]
    firestore_store.add_backlog(key=group, backlog=summary(1, "shop/Pod/c"))
    assert firestore_store.backlog_keys(limit=10) == [group]
    taken = firestore_store.take_backlog(key=group)
    assert taken is not None
    assert taken.summary.count == 3


def test_concurrent_backlog_adds_keep_an_exact_count(firestore_store: FirestoreStateStore):
    def add(store: FirestoreStateStore) -> list[bool]:
        for i in range(5):
            store.add_backlog(key=BUDGET_HOT, backlog=summary(1, f"shop/Pod/p-{i}"))
        return []

    in_threads(4, add)
    taken = firestore_store.take_backlog(key=BUDGET_HOT)
    assert taken is not None
    assert taken.summary.count == 20


def test_the_circuit_opens_at_the_threshold_and_closes_on_success(
    firestore_store: FirestoreStateStore,
):
    cool = timedelta(minutes=1)
    record = firestore_store.record_failure
    assert [record(key="circuit|a", threshold=3, cool_down=cool, now=NOW) for _ in range(3)] == [
        False,
        False,
        True,
    ]
    state = firestore_store.circuit_state
    assert state(key="circuit|a", now=NOW + timedelta(seconds=59)) == "open"
    assert state(key="circuit|a", now=NOW + cool) == "half-open"  # until a success or failure
    assert record(key="circuit|a", threshold=3, cool_down=cool, now=NOW + cool)  # re-opens
    assert state(key="circuit|a", now=NOW + cool + timedelta(seconds=1)) == "open"
    firestore_store.record_success(key="circuit|a")
    assert state(key="circuit|a", now=NOW) == "closed"
    assert state(key="circuit|never", now=NOW) == "closed"
    assert not record(key="circuit|a", threshold=3, cool_down=cool, now=NOW)  # counts afresh


def test_a_storm_through_the_pipeline_starts_no_more_runs_than_the_budget(
    firestore_store: FirestoreStateStore, tmp_path: Path
):
    clock = Clock(START)
    runtime = Runtime.build(
        Settings(config_dir=storm_config(tmp_path), dispatch="dry-run"),
        clock=clock,
        store=firestore_store,
        dispatcher=DryRunDispatcher(),
    )
    decisions = run_storm(runtime, clock, storm_events(n=150, pods=30))
    outcome = check_storm(decisions, runtime, clock)
    assert len(outcome.runs) == AGENT_RUNS_PER_HOUR
    assert outcome.counts["coalesced"] > 0


def test_a_10000_event_storm_from_four_processes_keeps_the_budget(
    firestore_store: FirestoreStateStore, tmp_path: Path
):
    outcomes = run_storm_processes(storm_config(tmp_path), "firestore", n=10_000, processes=4)
    assert len(outcomes) == 10_000
    counts = check_shared_storm(outcomes, firestore_store)
    assert counts["coalesced"] > 0
