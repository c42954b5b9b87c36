"""Storms through the pipeline with FirestoreStateStore on the emulator, from one process and
from four. Its storm-control primitives (slots, leases, circuits, backlogs), alone and under
concurrent callers, are checked by the contract suites in tests/integration/state/."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from khook_core.dispatch.dryrun import DryRunDispatcher
from khook_core.runtime import Clock, Runtime
from khook_core.settings import Settings
from khook_core.state.firestore import FirestoreStateStore
from khook_core.storm.records import Backlog, BacklogKey, BacklogKind, Summary
from tests.support.storm import (
    AGENT_RUNS_PER_HOUR,
    START,
    check_shared_storm,
    check_storm,
    run_storm,
    run_storm_processes,
    storm_config,
    storm_events,
)

NOW = datetime(2026, 1, 5, 10, 0, 30, tzinfo=UTC)


def summary(count: int, resource: str, at: datetime = NOW) -> Backlog:
    return Backlog(
        Summary(count=count, first=at, last=at, resources=(resource,), reasons=("BackOff",)),
        hook="shop/web",
        event=f'{{"resource": "{resource}"}}',
    )


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
