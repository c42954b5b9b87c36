"""A storm from one failing deployment, and the checks every storm test makes of its outcome.

Shared by the unit tests (memory, SQLite, processes) and the Firestore integration test.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.synchronize
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from khook_core.pipeline import Decision, run_pipeline, sweep
from khook_core.runtime import Clock, Runtime
from khook_core.state.base import StateStore
from khook_core.storm.records import BacklogKey, BacklogKind
from tests.support.configdir import make_config
from tests.support.k8s_events import core_event

START = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
STORM_SECONDS = 50 * 60  # inside one clock hour, so the hourly budget window is one window
HOOK_RUNS_PER_HOUR = 3
AGENT_RUNS_PER_HOUR = 2
MAX_CONCURRENT_RUNS = 5  # distinct from the rate limits and from the 4 processes

STORM_HOOK = """\
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {name: web-storm, namespace: shop}
spec:
  eventConfigurations:
  - eventType: pod-restart
    agentRef: {name: k8s-agent, namespace: kagent}
    coalesce: {window: 5m}
    rateLimit: {runs: HOOK_RUNS, per: 1h}
    prompt: "Deployment of pod {{.ResourceName}} is crash-looping."
""".replace("HOOK_RUNS", str(HOOK_RUNS_PER_HOUR))

STORM_BUDGETS = """\
maxConcurrentRuns: 10
agents:
  kagent/k8s-agent: {runs: AGENT_RUNS, per: 1h}
circuitBreaker: {failures: 3, coolDown: 1m}
""".replace("AGENT_RUNS", str(AGENT_RUNS_PER_HOUR))

_SAFE = "bcdfghjklmnpqrstvwxz2456789"


# The hook's rate limit is the tightest; the agent's ("*") and the global cap are slack.
HOOK_BOUND_BUDGETS = """\
maxConcurrentRuns: 10
agents:
  "*": {runs: 50, per: 1h}
circuitBreaker: {failures: 3, coolDown: 1m}
"""

# No coalescing and no rate limit: only the global cap stands between the storm and the agent.
# The lease outlasts the 50-minute storm (a run taken at 10:00 is in flight until 11:00), so
# nothing lapses during it and the tail's sweep at 11:01 finds the cap free again.
CONCURRENCY_BOUND_HOOK = STORM_HOOK.replace("    coalesce: {window: 5m}\n", "").replace(
    f"    rateLimit: {{runs: {HOOK_RUNS_PER_HOUR}, per: 1h}}\n", ""
)
CONCURRENCY_BOUND_BUDGETS = f"""\
maxConcurrentRuns: {MAX_CONCURRENT_RUNS}
runLease: 1h
circuitBreaker: {{failures: 3, coolDown: 1m}}
"""

BINDING_LIMITS = {
    "hook": HOOK_RUNS_PER_HOUR,
    "agent": AGENT_RUNS_PER_HOUR,
    "concurrency": MAX_CONCURRENT_RUNS,
}
"""For each storm configuration, the runs its binding limit allows during the storm."""

_CONFIGS = {
    "hook": (STORM_HOOK, HOOK_BOUND_BUDGETS),
    "agent": (STORM_HOOK, STORM_BUDGETS),
    "concurrency": (CONCURRENCY_BOUND_HOOK, CONCURRENCY_BOUND_BUDGETS),
}


def storm_config(tmp_path: Path, binding: str = "agent") -> Path:
    """The storm's config dir, with the hook's rate limit (``hook``), the agent's (``agent``,
    the default) or ``maxConcurrentRuns`` (``concurrency``) as the one limit that binds."""
    hooks, budgets = _CONFIGS[binding]
    config = make_config(tmp_path, hooks)
    (config / "budgets.yaml").write_text(budgets)
    return config


def storm_events(n: int = 10_000, pods: int = 200) -> list[tuple[datetime, dict[str, Any]]]:
    """``n`` BackOff events from the pods of deployment ``web``, spread over the storm."""
    out = []
    for i in range(n):
        at = START + timedelta(seconds=STORM_SECONDS * i / n)
        p = i % pods
        pod = "web-7d9f8c6b5-" + "".join(_SAFE[(p // 27**k) % 27] for k in range(5))
        stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        out.append(
            (
                at,
                core_event(
                    name=pod,
                    namespace="shop",
                    count=1 + i // pods,
                    uid=f"ev-{p}",
                    first="2026-01-05T10:00:00Z",
                    last=stamp,
                    created="2026-01-05T10:00:00Z",
                ),
            )
        )
    return out


def run_storm(
    runtime: Runtime, clock: Clock, events: list[tuple[datetime, dict[str, Any]]]
) -> list[Decision]:
    decisions = []
    for at, raw in events:
        clock.fixed = at
        decisions.extend(run_pipeline("kubernetes", raw, {}, runtime=runtime))
    return decisions


def held_back(decision: Decision) -> dict[str, Any] | None:
    assert decision.prompt is not None
    match = re.search(
        r"<<<KHOOK_EVENT_DATA (\w+)>>>\n(.*)\n<<<END_KHOOK_EVENT_DATA \1>>>", decision.prompt, re.S
    )
    assert match
    data: dict[str, Any] = json.loads(match.group(2))
    return data.get("held_back")


@dataclass
class StormOutcome:
    counts: Counter[str]
    runs: list[Decision]
    summarised: int


def check_storm(decisions: list[Decision], runtime: Runtime, clock: Clock) -> StormOutcome:
    """Every event that got past dedup is a run, or in exactly one run's summary: the storm's
    own runs, or the sweep's once the storm is over. Each summary names only the storm's pods
    and reason, and nothing is left held."""
    counts = Counter(d.decision for d in decisions)
    assert set(counts) <= {"dispatched", "duplicate", "coalesced", "suppressed:budget"}, counts
    runs = [d for d in decisions if d.decision == "dispatched"]
    summarised = sum(_checked_summary(run) for run in runs)
    assert runtime.store.backlog_keys(limit=10), "the storm left nothing for the sweep"

    clock.fixed = START + timedelta(hours=1, minutes=1)  # the next budget window
    tail = sweep(runtime=runtime)

    assert [d.decision for d in tail] == ["dispatched"], tail  # one run for the whole tail
    swept = _checked_summary(tail[0])
    assert swept > 0
    assert runtime.store.backlog_keys(limit=10) == []
    held = counts["coalesced"] + counts["suppressed:budget"]
    assert summarised + swept == held, (summarised, swept, counts)
    return StormOutcome(counts, runs, summarised)


def _checked_summary(run: Decision) -> int:
    summary = held_back(run)
    if summary is None:
        return 0
    assert summary["reasons"] == ["BackOff"]
    assert all(r.startswith("shop/Pod/web-7d9f8c6b5-") for r in summary["resources"])
    assert 0 < len(summary["resources"]) <= 20
    assert summary["first"] <= summary["last"]
    return int(summary["count"])


Outcomes = list[tuple[str, int | None]]
"""A process's decisions: (decision, held-back count of a run or None) pairs."""

START_TIMEOUT = 120.0
"""How long a worker waits at the start line for the others (a crashed sibling breaks it)."""


def storm_worker(
    storms: list[tuple[str, str]],
    shard: int,
    shards: int,
    n: int,
    start_line: multiprocessing.synchronize.Barrier,
    queue: multiprocessing.Queue[tuple[int, list[Outcomes]]],
) -> None:
    """One of several processes sharing a store (spawned): for each (config dir, store URL) in
    ``storms``, its shard of the storm, started together with the other processes."""
    from khook_core.dispatch.dryrun import DryRunDispatcher
    from khook_core.settings import Settings
    from khook_core.state import open_store

    results: list[Outcomes] = []
    for config, store_url in storms:
        store = open_store(store_url)
        clock = Clock(START)
        runtime = Runtime.build(
            Settings(config_dir=Path(config), dispatch="dry-run"),
            clock=clock,
            store=store,
            dispatcher=DryRunDispatcher(),
        )
        events = storm_events(n=n)[shard::shards]
        start_line.wait(START_TIMEOUT)  # all processes set up: now they contend for real
        decisions = run_storm(runtime, clock, events)
        results.append(
            [
                (
                    d.decision,
                    (held_back(d) or {}).get("count") if d.decision == "dispatched" else None,
                )
                for d in decisions
            ]
        )
        store.close()
    queue.put((shard, results))


def run_storms_processes(
    storms: list[tuple[Path, str]], n: int, processes: int = 4
) -> list[Outcomes]:
    """Each (config dir, store URL) storm split over the same ``processes`` spawned processes,
    one storm after the other (spawning costs more than a small storm): the outcomes of every
    storm, in the order given."""
    ctx = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[tuple[int, list[Outcomes]]] = ctx.Queue()
    start_line = ctx.Barrier(processes)
    jobs = [(str(config), url) for config, url in storms]
    procs = [
        ctx.Process(target=storm_worker, args=(jobs, i, processes, n, start_line, queue))
        for i in range(processes)
    ]
    for proc in procs:
        proc.start()
    try:
        results = dict(queue.get(timeout=600) for _ in procs)
    finally:
        for proc in procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
    return [
        [item for shard in range(processes) for item in results[shard][storm]]
        for storm in range(len(storms))
    ]


def run_storm_processes(config: Path, store_url: str, n: int, processes: int = 4) -> Outcomes:
    """The storm split over ``processes`` spawned processes sharing one store."""
    return run_storms_processes([(config, store_url)], n, processes)[0]


def check_shared_storm(
    outcomes: Outcomes,
    store: StateStore,
    hook: str = "shop/web-storm",
    limit: int = AGENT_RUNS_PER_HOUR,
) -> Counter[str]:
    """The multi-process form of ``check_storm``: the budget (at most ``limit`` runs) held, and
    every held-back event is in exactly one run's summary or still in a backlog."""
    counts = Counter(decision for decision, _ in outcomes)
    assert set(counts) <= {"dispatched", "duplicate", "coalesced", "suppressed:budget"}, counts
    assert 1 <= counts["dispatched"] <= limit, counts
    summarised = sum(held or 0 for decision, held in outcomes if decision == "dispatched")
    pending = 0
    for key in {
        BacklogKey(BacklogKind.BUDGET, f"{hook}|pod-restart"),
        BacklogKey(BacklogKind.GROUP, f"{hook}|pod-restart|shop/web"),
    }:
        left = store.take_backlog(key=key)
        pending += left.summary.count if left else 0
    assert summarised + pending == counts["coalesced"] + counts["suppressed:budget"], counts
    return counts
