"""Budget is spent on runs that start, never on refusals or failures."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from khook_core.errors import TransientError
from khook_core.pipeline import run_pipeline
from khook_core.state.memory import MemoryStateStore
from tests.support.configdir import make_config, restart_hook
from tests.support.k8s_events import core_event
from tests.support.storm import START
from tests.unit.storm.test_sweep import FailsCalls, build

HOOK = restart_hook(
    name="web",
    prompt="Pod {{.ResourceName}} keeps restarting.",
    extensions="rateLimit: {runs: 3, per: 1h}",
)


def deliver(runtime, clock, minute: int, pod: str, suffix: str = "bbbbb") -> str:
    """One BackOff of pod ``<pod>-7d9f8c6b5-<suffix>`` (deployment ``pod``)."""
    clock.fixed = START + timedelta(minutes=minute)
    stamp = clock.fixed.strftime("%Y-%m-%dT%H:%M:%SZ")
    raw = core_event(
        name=f"{pod}-7d9f8c6b5-{suffix}", namespace="shop", last=stamp, uid=pod + suffix
    )
    (decision,) = run_pipeline("kubernetes", raw, {}, runtime=runtime)
    return decision.decision


def test_a_refusal_by_the_agent_limit_gives_the_hook_slot_back(tmp_path: Path):
    config = make_config(tmp_path, HOOK)
    (config / "budgets.yaml").write_text("agents:\n  kagent/k8s-agent: {runs: 1, per: 10m}\n")
    runtime, clock = build(config, MemoryStateStore())

    got = [
        deliver(runtime, clock, m, pod)
        for m, pod in ((0, "a"), (1, "b"), (2, "c"), (10, "d"), (20, "e"), (30, "f"))
    ]

    # The hook allows 3 an hour, the agent 1 per 10 minutes: both refusals at 10:01 and 10:02
    # came from the agent, so the hook still had slots for 10:10 and 10:20.
    assert got == [
        "dispatched",
        "suppressed:budget",
        "suppressed:budget",
        "dispatched",
        "dispatched",
        "suppressed:budget",
    ]


def test_a_failed_dispatch_gives_its_run_lease_back_for_the_retry(tmp_path: Path):
    config = make_config(tmp_path, HOOK.replace("    rateLimit: {runs: 3, per: 1h}\n", ""))
    (config / "budgets.yaml").write_text("maxConcurrentRuns: 1\nrunLease: 1h\n")
    dispatcher = FailsCalls(1)
    runtime, clock = build(config, MemoryStateStore(), dispatcher)

    assert deliver(runtime, clock, 0, "a") == "failed:transient"
    assert deliver(runtime, clock, 1, "a") == "dispatched"  # the redelivery: the lease was free
    assert deliver(runtime, clock, 2, "b") == "suppressed:budget"  # now one run is in flight


def test_a_run_out_of_time_gives_its_budget_back(tmp_path: Path):
    config = make_config(tmp_path, HOOK.replace("runs: 3", "runs: 1"))
    runtime, _ = build(config, MemoryStateStore())
    raw = core_event(
        name="a-7d9f8c6b5-bbbbb",
        namespace="shop",
        last=START.strftime("%Y-%m-%dT%H:%M:%SZ"),
        uid="a",
    )

    [late] = run_pipeline("kubernetes", raw, {}, runtime=runtime, deadline=time.monotonic() - 1)
    [retry] = run_pipeline("kubernetes", raw, {}, runtime=runtime)

    assert late.decision == "failed:transient"
    assert retry.decision == "dispatched"  # the hook's only slot was given back


def test_an_unreachable_store_mid_budget_gives_back_what_was_taken(tmp_path: Path):
    class LeaseFails(MemoryStateStore):
        def acquire_lease(self, **kwargs):
            raise TransientError("store unreachable")

    config = make_config(tmp_path, HOOK.replace("runs: 3", "runs: 1"))
    (config / "budgets.yaml").write_text("maxConcurrentRuns: 5\n")
    store = LeaseFails()
    runtime, clock = build(config, store)

    assert deliver(runtime, clock, 0, "a") == "failed:state-unavailable"
    assert store.take_slot(
        key="rate|hook|shop/web|pod-restart", limit=1, window=timedelta(hours=1), now=START
    )  # the slot came back


def test_a_failed_run_reopens_its_groups_window_for_the_retry(tmp_path: Path):
    config = make_config(
        tmp_path,
        HOOK.replace("    rateLimit: {runs: 3, per: 1h}\n", "    coalesce: {window: 5m}\n"),
    )
    dispatcher = FailsCalls(1)
    runtime, clock = build(config, MemoryStateStore(), dispatcher)

    assert deliver(runtime, clock, 0, "web") == "failed:transient"
    # The redelivery is the group's run, not held behind a run that never started.
    assert deliver(runtime, clock, 1, "web") == "dispatched"
    assert deliver(runtime, clock, 2, "web", "ccccc") == "coalesced"  # the run's window now
