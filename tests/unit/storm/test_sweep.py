"""The sweep: held-back events whose group went quiet still get their run, once."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from khook_core.dispatch.base import DispatchRequest, DispatchResult
from khook_core.dispatch.dryrun import DryRunDispatcher
from khook_core.errors import DispatchError, TransientError
from khook_core.pipeline import Decision, run_pipeline, sweep
from khook_core.runtime import Clock, Runtime
from khook_core.settings import Settings
from khook_core.state import open_store
from khook_core.state.base import StateStore
from khook_core.state.memory import MemoryStateStore
from khook_core.storm.records import Backlog, BacklogKey, BacklogKind, Summary
from tests.support.configdir import make_config, restart_hook
from tests.support.k8s_events import core_event
from tests.support.storm import START, held_back

POD_SUFFIX = "bcdfghjklmnpqrstvwxz2456789bcdfghjklmnpqrstvwxz2456789"
GROUPED = restart_hook(
    name="web",
    prompt="Pod {{.ResourceName}} keeps restarting.",
    extensions="coalesce: {window: 5m}",
)


class FailsCalls(DryRunDispatcher):
    """Raises TransientError on the given calls (1-based), succeeds on the others."""

    def __init__(self, *failing: int) -> None:
        super().__init__()
        self.failing = set(failing)
        self.calls = 0

    def dispatch(self, request: DispatchRequest) -> DispatchResult:
        self.calls += 1
        if self.calls in self.failing:
            raise TransientError("agent down")
        return super().dispatch(request)


def build(
    config: Path, store: StateStore, dispatcher: DryRunDispatcher | None = None
) -> tuple[Runtime, Clock]:
    clock = Clock(START)
    runtime = Runtime.build(
        Settings(config_dir=config, dispatch="dry-run"),
        clock=clock,
        store=store,
        dispatcher=dispatcher or DryRunDispatcher(),
    )
    return runtime, clock


def deliver(runtime: Runtime, clock: Clock, minute: float, pod: str = "") -> str:
    """One BackOff of a pod of deployment ``web`` (a new pod each minute unless named)."""
    clock.fixed = START + timedelta(minutes=minute)
    pod = pod or f"web-7d9f8c6b5-{POD_SUFFIX[int(minute * 2)]}bbbb"
    stamp = clock.fixed.strftime("%Y-%m-%dT%H:%M:%SZ")
    raw = core_event(name=pod, namespace="shop", last=stamp, uid=f"{pod}-{minute}")
    (decision,) = run_pipeline("kubernetes", raw, {}, runtime=runtime)
    return decision.decision


def sweep_at(runtime: Runtime, clock: Clock, minute: float) -> list[Decision]:
    clock.fixed = START + timedelta(minutes=minute)
    return sweep(runtime=runtime)


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_the_tail_of_a_quiet_group_runs_once_after_its_window(tmp_path: Path, backend: str):
    store = open_store("memory" if backend == "memory" else f"sqlite:{tmp_path}/state.db")
    runtime, clock = build(make_config(tmp_path, GROUPED), store)
    assert [deliver(runtime, clock, m) for m in (0, 1, 2)] == [
        "dispatched",
        "coalesced",
        "coalesced",
    ]

    assert [d.decision for d in sweep_at(runtime, clock, 3)] == ["coalesced"]  # window open
    [run] = sweep_at(runtime, clock, 5.5)

    assert run.decision == "dispatched"
    assert run.event is not None
    assert run.event.timestamp == START + timedelta(minutes=2)  # the latest held event
    summary = held_back(run)
    assert summary is not None
    assert summary["count"] == 2
    assert summary["resources"] == ["shop/Pod/web-7d9f8c6b5-dbbbb", "shop/Pod/web-7d9f8c6b5-gbbbb"]
    assert run.prompt is not None
    assert "This run stands for 2 event(s) held back" in run.prompt
    assert sweep_at(runtime, clock, 6) == []  # nothing left, nothing twice
    assert len(runtime.dispatcher.requests) == 2  # type: ignore[attr-defined]
    # The sweep's run opened the group's next window like any run.
    assert deliver(runtime, clock, 7) == "coalesced"
    [audit] = [f for f in store.firings(limit=10) if f.key.startswith("sweep|")]
    assert audit.outcome == "dispatched"
    assert audit.hook == "shop/web"


def test_an_agent_failure_keeps_the_tail_for_the_next_sweep_without_a_second_run(tmp_path: Path):
    dispatcher = FailsCalls(2)
    runtime, clock = build(make_config(tmp_path, GROUPED), MemoryStateStore(), dispatcher)
    assert [deliver(runtime, clock, m) for m in (0, 1)] == ["dispatched", "coalesced"]

    [failed] = sweep_at(runtime, clock, 6)
    [retried] = sweep_at(runtime, clock, 7)

    assert (failed.decision, failed.retryable) == ("failed:transient", True)
    assert retried.decision == "dispatched"
    assert (held_back(retried) or {})["count"] == 1
    assert sweep_at(runtime, clock, 8) == []
    assert len(dispatcher.requests) == 2  # the first run and the retried tail, nothing twice


def test_an_open_circuit_keeps_the_tail_without_calling_the_agent(tmp_path: Path):
    config = make_config(tmp_path, GROUPED)
    (config / "budgets.yaml").write_text("circuitBreaker: {failures: 1, coolDown: 10m}\n")
    dispatcher = FailsCalls(2)
    runtime, clock = build(config, MemoryStateStore(), dispatcher)
    assert [deliver(runtime, clock, 0), deliver(runtime, clock, 1)] == ["dispatched", "coalesced"]
    assert deliver(runtime, clock, 1.5, pod="api-7d9f8c6b5-bbbbb") == "failed:transient"

    [held] = sweep_at(runtime, clock, 6)
    assert held.decision == "failed:circuit-open"
    assert dispatcher.calls == 2

    [run] = sweep_at(runtime, clock, 12)  # after the cool-down
    assert run.decision == "dispatched"
    assert (held_back(run) or {})["count"] == 1


def test_over_budget_tails_wait_for_the_next_window(tmp_path: Path):
    config = make_config(tmp_path, GROUPED)
    (config / "budgets.yaml").write_text("agents:\n  kagent/k8s-agent: {runs: 1, per: 1h}\n")
    runtime, clock = build(config, MemoryStateStore())
    assert [deliver(runtime, clock, m) for m in (0, 1)] == ["dispatched", "coalesced"]

    assert [d.decision for d in sweep_at(runtime, clock, 10)] == ["suppressed:budget"]
    assert [d.decision for d in sweep_at(runtime, clock, 61)] == ["dispatched"]
    assert sweep_at(runtime, clock, 62) == []


def test_a_removed_hook_drops_its_tail_with_a_reason(tmp_path: Path):
    store = MemoryStateStore()
    runtime, clock = build(make_config(tmp_path / "old", GROUPED), store)
    assert [deliver(runtime, clock, m) for m in (0, 1)] == ["dispatched", "coalesced"]
    renamed = GROUPED.replace("name: web,", "name: web-v2,")
    runtime, clock = build(make_config(tmp_path / "new", renamed), store)

    [dropped] = sweep_at(runtime, clock, 6)

    assert dropped.decision == "dropped:hook-gone"
    assert dropped.hook == "shop/web"
    assert store.backlog_keys(limit=10) == []


def test_concurrent_sweeps_start_each_tail_exactly_once(tmp_path: Path):
    url = f"sqlite:{tmp_path}/state.db"
    runtime, clock = build(make_config(tmp_path, GROUPED), open_store(url))
    deployments = [f"web{i}" for i in range(40)]
    for name in deployments:
        assert [
            deliver(runtime, clock, m, f"{name}-7d9f8c6b5-{c}bbbb")
            for m, c in ((0, "b"), (1, "c"), (2, "d"))
        ] == ["dispatched", "coalesced", "coalesced"]
    sweepers = [build(make_config(tmp_path / f"s{i}", GROUPED), open_store(url)) for i in range(4)]
    results: list[Decision] = []
    barrier = threading.Barrier(len(sweepers))

    def run(rt: Runtime, ck: Clock) -> None:
        ck.fixed = START + timedelta(minutes=6)
        barrier.wait()
        results.extend(sweep(runtime=rt))

    threads = [threading.Thread(target=run, args=pair) for pair in sweepers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    runs = [d for d in results if d.decision == "dispatched"]
    assert sorted(d.event.resource.name for d in runs if d.event) == sorted(
        f"{name}-7d9f8c6b5-dbbbb" for name in deployments
    )  # each group's latest
    assert all((held_back(d) or {})["count"] == 2 for d in runs)
    assert sum(len(rt.dispatcher.requests) for rt, _ in sweepers) == 40  # type: ignore[attr-defined,misc]


def test_a_tick_out_of_time_leaves_every_backlog_for_the_next(tmp_path: Path):
    runtime, clock = build(make_config(tmp_path, GROUPED), MemoryStateStore())
    assert [deliver(runtime, clock, m) for m in (0, 1)] == ["dispatched", "coalesced"]
    clock.fixed = START + timedelta(minutes=6)

    assert sweep(runtime=runtime, deadline=time.monotonic() - 1) == []
    assert runtime.store.backlog_keys(limit=10) != []
    [run] = sweep(runtime=runtime, deadline=time.monotonic() + 30)

    assert run.decision == "dispatched"
    assert len(runtime.dispatcher.requests) == 2  # type: ignore[attr-defined]


def test_a_trailing_group_makes_one_run_that_lists_every_event_of_its_window(tmp_path: Path):
    config = make_config(
        tmp_path,
        GROUPED.replace("coalesce: {window: 5m}", "coalesce: {window: 5m, leading: false}"),
    )
    runtime, clock = build(config, MemoryStateStore())

    assert [deliver(runtime, clock, m) for m in (0, 1, 2)] == ["coalesced"] * 3
    assert [d.decision for d in sweep_at(runtime, clock, 4)] == ["coalesced"]  # window open
    [run] = sweep_at(runtime, clock, 5.5)

    assert run.decision == "dispatched"
    assert (held_back(run) or {})["count"] == 3  # the first event too: one run for the burst
    assert len(runtime.dispatcher.requests) == 1  # type: ignore[attr-defined]
    assert deliver(runtime, clock, 7) == "coalesced"  # the next window, held in turn
    [following] = sweep_at(runtime, clock, 11)
    assert (held_back(following) or {})["count"] == 1


def test_a_backlog_without_a_readable_event_is_dropped_with_a_reason(tmp_path: Path):
    store = MemoryStateStore()
    runtime, clock = build(make_config(tmp_path, GROUPED), store)
    summary = Summary(count=2, first=START, last=START, resources=("shop/Pod/web-0",))
    store.add_backlog(
        key=BacklogKey(BacklogKind.GROUP, "shop/web|pod-restart|shop/web"),
        backlog=Backlog(summary, hook="shop/web", event="{not json"),
    )

    [dropped] = sweep_at(runtime, clock, 6)

    assert dropped.decision == "dropped:unreadable-backlog"
    assert store.backlog_keys(limit=10) == []
    assert len(runtime.dispatcher.requests) == 0  # type: ignore[attr-defined]


def test_a_tail_the_agent_refuses_is_not_offered_again_and_again(tmp_path: Path):
    class Refuses(DryRunDispatcher):
        def dispatch(self, request: DispatchRequest) -> DispatchResult:
            if request.key.startswith("sweep|"):
                raise DispatchError("agent refuses", status=400)
            return super().dispatch(request)

    runtime, clock = build(make_config(tmp_path, GROUPED), MemoryStateStore(), Refuses())
    assert [deliver(runtime, clock, m) for m in (0, 1)] == ["dispatched", "coalesced"]

    decisions = [[d.decision for d in sweep_at(runtime, clock, m)] for m in (6, 7, 8, 9)]

    # Refused under the group's key, handed to the hook's budget backlog and refused once more;
    # the same summary a third time is recognised and dropped, and nothing is left.
    assert decisions == [["failed:rejected"], ["failed:rejected"], ["duplicate"], []]
