"""Correlation through the pipeline and the sweep: one incident per workload across sources,
one agent run, later evidence as follow-ups in the incident's context (memory store, dry-run)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from khook_core.dispatch.dryrun import DryRunDispatcher
from khook_core.errors import TransientError
from khook_core.pipeline import run_pipeline, sweep
from khook_core.runtime import Clock, Runtime
from khook_core.settings import Settings
from khook_core.state.incident_memory import MemoryIncidentStore
from khook_core.state.memory import MemoryStateStore
from tests.support.configdir import make_config
from tests.support.dispatchers import FlakyDispatcher
from tests.support.incidents import (
    CHECKOUT,
    GITHUB_HEADERS,
    PLUGINS,
    backoff,
    crash_looping,
    deployment_failure,
    hooks,
)

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def runtime(tmp_path: Path, clock: Clock) -> Iterator[Runtime]:
    config = make_config(tmp_path, hooks(), plugins=PLUGINS)
    rt = Runtime.build(
        Settings(config_dir=config, state="memory", dispatch="dry-run"),
        clock=clock,
        store=MemoryStateStore(),
        dispatcher=DryRunDispatcher(),
    )
    rt.incident_store = MemoryIncidentStore()
    yield rt
    rt.close()


def at(clock: Clock, minutes: float) -> datetime:
    clock.fixed = T0 + timedelta(minutes=minutes)
    return clock.fixed


def requests(runtime: Runtime) -> list[tuple[str, str]]:
    dispatcher = runtime.dispatcher
    assert isinstance(dispatcher, DryRunDispatcher)
    return [(r.context_id, r.prompt) for r in dispatcher.requests]


def test_a_bad_deploy_seen_by_three_sources_is_one_run_and_follow_ups(
    runtime: Runtime, clock: Clock
):
    [opened] = run_pipeline("alertmanager", crash_looping(at(clock, 0)), {}, runtime=runtime)
    first = run_pipeline(
        "kubernetes", backoff("checkout-7d9f8-x2x4q", 1, at(clock, 1)), {}, runtime=runtime
    )
    second = run_pipeline(
        "kubernetes", backoff("checkout-7d9f8-b7k2m", 1, at(clock, 1.5)), {}, runtime=runtime
    )
    follow_up_1 = sweep(runtime=runtime)
    third = run_pipeline(
        "kubernetes", backoff("checkout-7d9f8-x2x4q", 2, at(clock, 2)), {}, runtime=runtime
    )
    deploy = run_pipeline(
        "webhook", deployment_failure(at(clock, 3)), GITHUB_HEADERS, runtime=runtime
    )
    too_soon = sweep(runtime=runtime)
    at(clock, 4)
    follow_up_2 = sweep(runtime=runtime)

    assert opened.decision == "opened:incident"
    joined = first + second + third + deploy
    assert [d.decision for d in joined] == ["joined:incident"] * 4
    [incident] = runtime.incidents.incidents()
    assert incident.workload == CHECKOUT
    assert {d.detail for d in joined} == {incident.id}
    assert [d.decision for d in follow_up_1 + follow_up_2] == ["follow-up", "follow-up"]
    assert too_soon == []
    sent = requests(runtime)
    assert len(sent) == 3  # one run, two follow-ups
    assert {context for context, _ in sent} == {incident.id}
    run, (_, one), (_, two) = sent[0][1], sent[1], sent[2]
    assert run.startswith('Alert "KubePodCrashLooping"')
    assert one.startswith("New evidence for the incident you are investigating")
    assert "checkout-7d9f8-x2x4q" in one
    assert "checkout-7d9f8-b7k2m" in one
    assert "deployment-failed" not in one
    assert "BackOff" in two
    assert "deployment-failed" in two
    audit = runtime.store.firings()
    assert {f.incident for f in audit} == {incident.id}
    # the repeat (the third BackOff) joined as evidence but, like a duplicate, is not recorded
    assert sorted(f.outcome for f in audit) == ["joined:incident"] * 3 + ["opened:incident"]


def test_two_workloads_at_once_are_two_incidents(runtime: Runtime, clock: Clock):
    a = run_pipeline(
        "kubernetes", backoff("checkout-7d9f8-x2x4q", 1, at(clock, 0)), {}, runtime=runtime
    )
    b = run_pipeline(
        "kubernetes", backoff("cart-5c6b7d8f9-q8z9w", 1, at(clock, 0.5)), {}, runtime=runtime
    )

    assert [d.decision for d in a + b] == ["opened:incident", "opened:incident"]
    assert sorted(i.workload for i in runtime.incidents.incidents()) == [
        "shop/Deployment/cart",
        CHECKOUT,
    ]
    assert len({context for context, _ in requests(runtime)}) == 2


def test_a_workload_quiet_past_the_window_opens_a_new_incident(runtime: Runtime, clock: Clock):
    [first] = run_pipeline(
        "kubernetes", backoff("checkout-7d9f8-x2x4q", 1, at(clock, 0)), {}, runtime=runtime
    )
    [later] = run_pipeline(
        "kubernetes", backoff("checkout-7d9f8-b7k2m", 1, at(clock, 11)), {}, runtime=runtime
    )

    assert (first.decision, later.decision) == ("opened:incident", "opened:incident")
    newer, older = runtime.incidents.incidents()
    assert older.close_reason == "quiet"
    assert newer.open
    assert [context for context, _ in requests(runtime)] == [older.id, newer.id]


def test_a_redelivered_joined_event_is_a_duplicate(runtime: Runtime, clock: Clock):
    run_pipeline("alertmanager", crash_looping(at(clock, 0)), {}, runtime=runtime)
    event = backoff("checkout-7d9f8-x2x4q", 1, at(clock, 1))
    run_pipeline("kubernetes", event, {}, runtime=runtime)
    [again] = run_pipeline("kubernetes", event, {}, runtime=runtime)

    assert again.decision == "duplicate"
    [incident] = runtime.incidents.incidents()
    assert incident.events == 2


class BreakingIncidents(MemoryIncidentStore):
    """The memory store until ``broken``: then every join fails as an unreachable store."""

    broken = False

    def correlate(self, **kwargs: Any) -> Any:
        if self.broken:
            raise TransientError("incident store unreachable")
        return super().correlate(**kwargs)


def test_a_repeat_joins_unrecorded_and_fails_retryably_when_the_store_does(
    runtime: Runtime, clock: Clock
):
    incidents = runtime.incident_store = BreakingIncidents()
    run_pipeline("alertmanager", crash_looping(at(clock, 0)), {}, runtime=runtime)
    run_pipeline(
        "kubernetes", backoff("checkout-7d9f8-x2x4q", 1, at(clock, 1)), {}, runtime=runtime
    )
    [repeat] = run_pipeline(
        "kubernetes", backoff("checkout-7d9f8-x2x4q", 2, at(clock, 2)), {}, runtime=runtime
    )
    incidents.broken = True
    [failed] = run_pipeline(
        "kubernetes", backoff("checkout-7d9f8-x2x4q", 3, at(clock, 3)), {}, runtime=runtime
    )

    [incident] = incidents.incidents()
    assert (repeat.decision, repeat.detail, repeat.prompt) == ("joined:incident", incident.id, None)
    assert (repeat.hook, repeat.agent) == ("shop/checkout", "kagent/k8s-agent")
    assert incident.last_event_at == T0 + timedelta(minutes=2)
    assert (failed.decision, failed.detail) == (
        "failed:state-unavailable",
        "incident store unreachable",
    )
    assert failed.retryable
    assert len(runtime.store.firings()) == 2  # the opening run and the first BackOff's join


def test_resolving_every_alert_closes_the_incident(runtime: Runtime, clock: Clock):
    body = crash_looping(at(clock, 0))
    run_pipeline("alertmanager", body, {}, runtime=runtime)
    resolved = crash_looping(T0)
    resolved["alerts"][0]["status"] = "resolved"
    resolved["alerts"][0]["endsAt"] = "2026-01-05T10:05:00Z"
    [decision] = run_pipeline("alertmanager", resolved, {}, runtime=runtime)

    assert decision.decision == "resolved"
    [incident] = runtime.incidents.incidents()
    assert incident.close_reason == "resolved"


def test_storm_budgets_count_the_incident_run_and_its_follow_ups(tmp_path: Path, clock: Clock):
    config = make_config(tmp_path, hooks(), plugins=PLUGINS)
    (config / "budgets.yaml").write_text('agents:\n  "*": {runs: 2, per: 1h}\n')
    runtime = Runtime.build(
        Settings(config_dir=config, state="memory", dispatch="dry-run"),
        clock=clock,
        store=MemoryStateStore(),
        dispatcher=DryRunDispatcher(),
    )
    runtime.incident_store = MemoryIncidentStore()
    try:
        [opened] = run_pipeline("alertmanager", crash_looping(at(clock, 0)), {}, runtime=runtime)
        run_pipeline(
            "kubernetes", backoff("checkout-7d9f8-x2x4q", 1, at(clock, 1)), {}, runtime=runtime
        )
        first = sweep(runtime=runtime)
        run_pipeline(
            "kubernetes", backoff("checkout-7d9f8-b7k2m", 1, at(clock, 2)), {}, runtime=runtime
        )
        at(clock, 5)
        over = sweep(runtime=runtime)
        [incident] = runtime.incidents.incidents()
        assert incident.pending  # kept while the budget was spent
    finally:
        runtime.close()

    assert opened.decision == "opened:incident"
    assert [d.decision for d in first] == ["follow-up"]
    assert [d.decision for d in over] == ["suppressed:budget"]
    assert len(requests(runtime)) == 2


def test_a_follow_up_that_fails_to_send_keeps_its_evidence_for_the_next_interval(
    tmp_path: Path, clock: Clock
):
    config = make_config(tmp_path, hooks(), plugins=PLUGINS)
    dispatcher = FlakyDispatcher(failures=0, error=TransientError("agent unreachable"))
    runtime = Runtime.build(
        Settings(config_dir=config, state="memory", dispatch="dry-run"),
        clock=clock,
        store=MemoryStateStore(),
        dispatcher=dispatcher,
    )
    runtime.incident_store = MemoryIncidentStore()
    try:
        run_pipeline("alertmanager", crash_looping(at(clock, 0)), {}, runtime=runtime)
        run_pipeline(
            "kubernetes", backoff("checkout-7d9f8-x2x4q", 1, at(clock, 1)), {}, runtime=runtime
        )
        dispatcher.failures = dispatcher.calls + 1  # the next send (the follow-up) fails
        failed = sweep(runtime=runtime)
        [kept] = runtime.incidents.incidents()
        run_pipeline(
            "kubernetes", backoff("checkout-7d9f8-b7k2m", 1, at(clock, 2)), {}, runtime=runtime
        )
        too_soon = sweep(runtime=runtime)  # the interval counts from the failed attempt
        at(clock, 4)
        delivered = sweep(runtime=runtime)
        at(clock, 8)
        nothing_more = sweep(runtime=runtime)
        [incident] = runtime.incidents.incidents()
    finally:
        runtime.close()

    assert [d.decision for d in failed] == ["failed:transient"]
    assert len(kept.pending) == 1
    assert kept.follow_ups == 0
    assert too_soon == []
    assert [d.decision for d in delivered] == ["follow-up"]
    assert nothing_more == []
    sent = requests(runtime)
    assert len(sent) == 2  # the run and one delivered follow-up
    (_, follow_up) = sent[1]
    assert "checkout-7d9f8-x2x4q" in follow_up  # the failed batch, not lost
    assert "checkout-7d9f8-b7k2m" in follow_up  # and what joined since
    assert follow_up.index("x2x4q") < follow_up.index("b7k2m")
    assert (incident.pending, incident.follow_ups) == ((), 1)


def test_an_opening_event_held_by_the_budget_runs_later_in_its_incident_context(
    tmp_path: Path, clock: Clock
):
    config = make_config(tmp_path, hooks(), plugins=PLUGINS)
    (config / "budgets.yaml").write_text('agents:\n  "*": {runs: 1, per: 5m}\n')
    runtime = Runtime.build(
        Settings(config_dir=config, state="memory", dispatch="dry-run"),
        clock=clock,
        store=MemoryStateStore(),
        dispatcher=DryRunDispatcher(),
    )
    runtime.incident_store = MemoryIncidentStore()
    try:
        [checkout] = run_pipeline(
            "kubernetes", backoff("checkout-7d9f8-x2x4q", 1, at(clock, 0)), {}, runtime=runtime
        )
        [cart] = run_pipeline(
            "kubernetes", backoff("cart-5c6b7d8f9-q8z9w", 1, at(clock, 1)), {}, runtime=runtime
        )
        at(clock, 6)
        swept = sweep(runtime=runtime)
        incidents = {i.workload: i for i in runtime.incidents.incidents()}
        audit = runtime.store.firings()
    finally:
        runtime.close()

    assert (checkout.decision, cart.decision) == ("opened:incident", "suppressed:budget")
    assert [d.decision for d in swept] == ["opened:incident"]
    contexts = [context for context, _ in requests(runtime)]
    assert contexts == [incidents[CHECKOUT].id, incidents["shop/Deployment/cart"].id]
    swept_run = next(f for f in audit if f.outcome == "opened:incident" and "cart" in f.resource)
    assert swept_run.incident == incidents["shop/Deployment/cart"].id
