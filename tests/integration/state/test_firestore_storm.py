"""Storms through the pipeline with FirestoreStateStore on the emulator, from one process and
from four. Its storm-control primitives (slots, leases, circuits, backlogs), alone and under
concurrent callers, are checked by the contract suites in tests/integration/state/."""

from __future__ import annotations

from pathlib import Path

from khook_core.dispatch.dryrun import DryRunDispatcher
from khook_core.runtime import Clock, Runtime
from khook_core.settings import Settings
from khook_core.state.firestore import FirestoreStateStore
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
