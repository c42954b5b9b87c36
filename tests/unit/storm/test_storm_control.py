from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path

import pytest

from khook_core.dispatch.dryrun import DryRunDispatcher
from khook_core.errors import DispatchError, TransientError
from khook_core.pipeline import run_pipeline
from khook_core.runtime import Clock, Runtime
from khook_core.settings import Settings
from khook_core.state import open_store
from khook_core.state.base import StateStore
from khook_core.state.memory import MemoryStateStore
from tests.support.dispatchers import FlakyDispatcher
from tests.support.k8s_events import core_event
from tests.support.storm import (
    AGENT_RUNS_PER_HOUR,
    START,
    check_shared_storm,
    check_storm,
    held_back,
    run_storm,
    run_storm_processes,
    storm_config,
    storm_events,
)


def runtime_for(
    config: Path, store: StateStore, dispatcher: DryRunDispatcher | None = None
) -> tuple[Runtime, Clock]:
    clock = Clock(START)
    rt = Runtime.build(
        Settings(config_dir=config, dispatch="dry-run"),
        clock=clock,
        store=store,
        dispatcher=dispatcher or DryRunDispatcher(),
    )
    return rt, clock


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_a_10000_event_storm_starts_no_more_runs_than_the_budget(tmp_path: Path, backend: str):
    store = open_store("memory" if backend == "memory" else f"sqlite:{tmp_path}/state.db")
    runtime, clock = runtime_for(storm_config(tmp_path), store)
    decisions = run_storm(runtime, clock, storm_events())
    outcome = check_storm(decisions, runtime, clock)
    # The agent's budget (2/h) is tighter than the hook's (3/h): it decides.
    assert len(outcome.runs) == AGENT_RUNS_PER_HOUR
    assert outcome.counts["coalesced"] > 0
    assert outcome.counts["suppressed:budget"] > 0
    # The storm's runs, and the sweep's one run for its tail in the next window.
    assert len(runtime.dispatcher.requests) == AGENT_RUNS_PER_HOUR + 1  # type: ignore[attr-defined]
    # The second run carries the summary of everything held back since the first.
    assert outcome.summarised > 0


def test_coalescing_alone_gives_one_run_per_group_and_window(tmp_path: Path):
    config = storm_config(tmp_path)
    (config / "budgets.yaml").write_text("{}\n")
    hooks = config / "hooks" / "hooks.yaml"
    hooks.write_text(hooks.read_text().replace("    rateLimit: {runs: 3, per: 1h}\n", ""))
    store = MemoryStateStore()
    runtime, clock = runtime_for(config, store)
    decisions = run_storm(runtime, clock, storm_events(n=2_000))
    outcome = check_storm(decisions, runtime, clock)
    # At most one run per 5-minute window over 50 minutes, and never two within one window.
    assert 1 < len(outcome.runs) <= 10
    times = [run.event.timestamp for run in outcome.runs if run.event is not None]
    assert all(b - a >= timedelta(minutes=5) for a, b in itertools.pairwise(times))
    for run in outcome.runs[1:]:
        assert run.prompt is not None
        assert "held back by storm control" in run.prompt


def test_the_budget_holds_with_four_processes_sharing_the_store(tmp_path: Path):
    config = storm_config(tmp_path)
    url = f"sqlite:{tmp_path / 'shared.db'}"
    open_store(url).close()
    outcomes = run_storm_processes(config, url, n=10_000)
    assert len(outcomes) == 10_000
    store = open_store(url)
    counts = check_shared_storm(outcomes, store)
    store.close()
    assert counts["coalesced"] > 0


def test_open_circuit_holds_events_as_retryable_without_calling_the_agent(tmp_path: Path):
    dispatcher = FlakyDispatcher(failures=3, error=TransientError("agent down"))
    config = storm_config(tmp_path)
    (config / "budgets.yaml").write_text("circuitBreaker: {failures: 3, coolDown: 1m}\n")
    hooks = config / "hooks" / "hooks.yaml"
    hooks.write_text(
        hooks.read_text()
        .replace("    coalesce: {window: 5m}\n", "")
        .replace("    rateLimit: {runs: 3, per: 1h}\n", "")
    )
    runtime, clock = runtime_for(config, MemoryStateStore(), dispatcher)

    def deliver(pod: str) -> list[str]:
        raw = core_event(name=pod, namespace="shop", last="2026-01-05T10:00:00Z")
        return [d.decision for d in run_pipeline("kubernetes", raw, {}, runtime=runtime)]

    assert [deliver(p) for p in ("a-0", "b-0", "c-0")] == [["failed:transient"]] * 3
    held = run_pipeline(
        "kubernetes",
        core_event(name="d-0", namespace="shop", last="2026-01-05T10:00:00Z"),
        {},
        runtime=runtime,
    )
    assert [(d.decision, d.retryable) for d in held] == [("failed:circuit-open", True)]
    assert dispatcher.calls == 3  # the open circuit did not call the agent
    clock.fixed = START + timedelta(minutes=1, seconds=1)
    assert deliver("d-0") == ["dispatched"]  # after the cool-down the held event goes through
    assert deliver("e-0") == ["dispatched"]  # and success closed the circuit


def test_a_run_that_does_not_start_hands_its_summary_to_the_next(tmp_path: Path):
    class RefusesSecond(DryRunDispatcher):
        calls = 0

        def dispatch(self, request):
            self.calls += 1
            if self.calls == 2:
                raise DispatchError("agent busy", status=409)
            return super().dispatch(request)

    config = storm_config(tmp_path)
    (config / "budgets.yaml").write_text("{}\n")
    hooks = config / "hooks" / "hooks.yaml"
    hooks.write_text(hooks.read_text().replace("    rateLimit: {runs: 3, per: 1h}\n", ""))
    store = MemoryStateStore()
    runtime, clock = runtime_for(config, store, RefusesSecond())

    def deliver(pod: str, minute: int) -> str:
        clock.fixed = START + timedelta(minutes=minute)
        stamp = clock.fixed.strftime("%Y-%m-%dT%H:%M:%SZ")
        raw = core_event(name=f"web-7d9f8c6b5-{pod}", namespace="shop", last=stamp, uid=pod)
        (decision,) = run_pipeline("kubernetes", raw, {}, runtime=runtime)
        return decision.decision

    assert [deliver("bbbbb", 0), deliver("ccccc", 1), deliver("ddddd", 2)] == [
        "dispatched",
        "coalesced",
        "coalesced",
    ]
    assert deliver("fffff", 6) == "failed:rejected"  # carried 2 held events, did not start
    clock.fixed = START + timedelta(minutes=12)
    final = run_pipeline(
        "kubernetes",
        core_event(
            name="web-7d9f8c6b5-ggggg", namespace="shop", last="2026-01-05T10:12:00Z", uid="g"
        ),
        {},
        runtime=runtime,
    )
    assert [d.decision for d in final] == ["dispatched"]
    summary = held_back(final[0])
    assert summary is not None
    assert summary["count"] == 2
