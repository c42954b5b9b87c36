"""Each budget in turn as the one that binds: the hook's rate limit, the agent's rate limit and
the global cap on runs in flight, in one process and across processes sharing a SQLite file.

The storms are small (2,000 events, about 1,000 past dedup): the point is the limit, not the
volume. The agent's limit binds in the storm of tests/unit/storm/test_storm_control.py (10,000
events, one process and four), so it is not repeated here.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from khook_core.dispatch.dryrun import DryRunDispatcher
from khook_core.pipeline import sweep
from khook_core.runtime import Clock, Runtime
from khook_core.settings import Settings
from khook_core.state import open_store
from khook_core.state.base import StateStore
from tests.support.storm import (
    BINDING_LIMITS,
    HOOK_RUNS_PER_HOUR,
    MAX_CONCURRENT_RUNS,
    START,
    Outcomes,
    check_shared_storm,
    check_storm,
    run_storm,
    run_storms_processes,
    storm_config,
    storm_events,
)

EVENTS = 2_000
BACKENDS = ["memory", "sqlite"]


def runtime_for(config: Path, store: StateStore) -> tuple[Runtime, Clock]:
    clock = Clock(START)
    runtime = Runtime.build(
        Settings(config_dir=config, dispatch="dry-run"),
        clock=clock,
        store=store,
        dispatcher=DryRunDispatcher(),
    )
    return runtime, clock


def open_backend(backend: str, tmp_path: Path) -> StateStore:
    return open_store("memory" if backend == "memory" else f"sqlite:{tmp_path}/state.db")


def dispatched_in_audit(store: StateStore) -> int:
    return sum(f.outcome == "dispatched" for f in store.firings(limit=100_000))


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_hook_rate_limit_binds_when_it_is_the_tightest(tmp_path: Path, backend: str):
    store = open_backend(backend, tmp_path)
    runtime, clock = runtime_for(storm_config(tmp_path, "hook"), store)

    decisions = run_storm(runtime, clock, storm_events(n=EVENTS))
    outcome = check_storm(decisions, runtime, clock)

    # Coalescing alone would allow one run per 5-minute window (5 bursts past dedup); the
    # agent's limit (50/h) and the cap (10) are slack: the hook's 3/h decides.
    assert len(outcome.runs) == HOOK_RUNS_PER_HOUR
    times = [run.event.timestamp for run in outcome.runs if run.event is not None]
    assert all(b - a >= timedelta(minutes=5) for a, b in itertools.pairwise(times))
    assert outcome.counts["coalesced"] > 0
    assert outcome.counts["suppressed:budget"] > 0
    assert outcome.summarised > 0
    # The storm's runs and the sweep's one run for the tail, and the audit trail agrees.
    assert len(runtime.dispatcher.requests) == HOOK_RUNS_PER_HOUR + 1  # type: ignore[attr-defined]
    assert dispatched_in_audit(store) == HOOK_RUNS_PER_HOUR + 1
    store.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_concurrent_runs_binds_when_nothing_else_holds_the_storm_back(
    tmp_path: Path, backend: str
):
    store = open_backend(backend, tmp_path)
    runtime, clock = runtime_for(storm_config(tmp_path, "concurrency"), store)

    decisions = run_storm(runtime, clock, storm_events(n=EVENTS))
    past_dedup = [d.decision for d in decisions if d.decision != "duplicate"]

    # No coalescing, no rate limit: every event past dedup asks for a run, and the first
    # MAX_CONCURRENT_RUNS take the leases, which outlast the storm; all the others are held.
    assert len(past_dedup) > 10 * MAX_CONCURRENT_RUNS
    assert past_dedup[: MAX_CONCURRENT_RUNS + 1] == (
        ["dispatched"] * MAX_CONCURRENT_RUNS + ["suppressed:budget"]
    )
    assert Counter(past_dedup) == {
        "dispatched": MAX_CONCURRENT_RUNS,
        "suppressed:budget": len(past_dedup) - MAX_CONCURRENT_RUNS,
    }
    # While the leases are live the tail waits, untouched, even though no rate limit applies.
    clock.fixed = START + timedelta(minutes=59)
    assert [d.decision for d in sweep(runtime=runtime)] == ["suppressed:budget"]

    outcome = check_storm(decisions, runtime, clock)  # its sweep comes after the leases lapse

    assert len(outcome.runs) == MAX_CONCURRENT_RUNS
    assert outcome.summarised == 0  # nothing was held before the cap was reached
    assert len(runtime.dispatcher.requests) == MAX_CONCURRENT_RUNS + 1  # type: ignore[attr-defined]
    assert dispatched_in_audit(store) == MAX_CONCURRENT_RUNS + 1
    store.close()


SHARED = ["hook", "concurrency"]


@pytest.fixture(scope="module")
def shared_storms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Outcomes, str]]:
    """The storm of each configuration in SHARED, split over the same 4 spawned processes
    (one storm after the other, each on its own SQLite file): binding → (outcomes, store URL)."""
    storms: list[tuple[Path, str]] = []
    for binding in SHARED:
        tmp = tmp_path_factory.mktemp(binding)
        url = f"sqlite:{tmp / 'shared.db'}"
        open_store(url).close()  # the schema, before the processes race for it
        storms.append((storm_config(tmp, binding), url))
    results = run_storms_processes(storms, n=EVENTS, processes=4)
    return {
        binding: (outcomes, url)
        for binding, outcomes, (_, url) in zip(SHARED, results, storms, strict=True)
    }


@pytest.mark.parametrize("binding", SHARED)
def test_the_binding_limit_holds_with_four_processes_sharing_the_store(
    shared_storms: dict[str, tuple[Outcomes, str]], binding: str
):
    limit = BINDING_LIMITS[binding]
    outcomes, url = shared_storms[binding]

    assert len(outcomes) == EVENTS
    store = open_store(url)
    counts = check_shared_storm(outcomes, store, limit=limit)
    # Exactly the limit, not just at most: the processes together saw far more candidates
    # than it, so fewer runs would mean runs wrongly refused.
    assert counts["dispatched"] == limit
    assert counts["suppressed:budget"] > 0
    assert dispatched_in_audit(store) == limit
    store.close()
