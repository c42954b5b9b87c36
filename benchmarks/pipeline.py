"""Pipeline throughput: Kubernetes Events, one core, dry-run dispatch, memory state.

Budgets: >= 20,000 events/s; the cost over the floor measured in the same run (``json.loads`` +
``Event.model_validate`` on the same payloads) <= 2.0x on the storm mix and <= 4.0x when every
event fires.

Two workloads, each timed against its own floor, best of ``ROUNDS`` rounds (as timeit does: the
least disturbed run of each):

* **storm mix** — the workload the budget has always been checked on: 20,000 Warning events
  over 2,000 distinct dedup keys. A quarter (FailedScheduling → ``pod-pending``) match no hook;
  of the rest only the first of each key fires (render + dispatch + record), the others stop at
  the claim as duplicates: about 7.5 % of the events fire.
* **all unique** — every event is a new resource with a hooked reason, so every one is claimed,
  rendered, dispatched (dry-run) and recorded: the per-firing cost, with its own budget.

And the cost of hook conditions: the storm mix again with a CEL ``when:`` on every
configuration (``WHEN``, true for every event, so the decisions are the same), against the
same run without, paired round by round; budget: at most 10 % over.

The cost of redaction is ``redaction.py``'s.

And the cost of correlation, the same way: the storm mix with ``correlate:`` on every
configuration (each team's pods are one workload, so every event opens or joins its incident,
and a repeat that would be a duplicate joins it as evidence) against the same run without;
budget: at most 20 % over. The decisions differ by design (``opened:``/``joined:incident``
instead of ``dispatched``/``duplicate``), so they are printed, not compared.

And what each stage costs, unbudgeted, on both workloads: ``STAGES`` (decoding, normalize,
redaction, matching, the claim, storm control, rendering, the dry-run dispatch, the decisions
and audit records), each timed alone over the events that reach it, with the whole pipeline
and the floor in the same rounds (CPU time, best of ``ROUNDS``), so the stages' sum, the rest
(the calls between them) and the garbage collector's share are read beside the whole.

``KHOOK_BENCH_EVENTS`` and ``KHOOK_BENCH_ROUNDS`` shrink the run for a quick check;
``KHOOK_BENCH_ONLY=when`` (or ``correlation``) runs only that comparison.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import figure, table

from khook_core import conditions, correlation, prompt
from khook_core.decisions import Decision, DecisionKind
from khook_core.dispatch.base import DispatchRequest, DispatchResult
from khook_core.dispatch.dryrun import DryRunDispatcher
from khook_core.event import Event, EventId, Resource, Severity
from khook_core.firing import Attempt
from khook_core.hooks import HookRule
from khook_core.pipeline import duplicate, enrich, run_pipeline
from khook_core.runtime import Clock, Runtime
from khook_core.settings import Settings
from khook_core.state.memory import MemoryStateStore
from khook_core.storm import admission, keys, records
from khook_core.storm.records import DedupKey
from khook_core.tracking import tracker

N = int(os.environ.get("KHOOK_BENCH_EVENTS", "20000"))
ROUNDS = int(os.environ.get("KHOOK_BENCH_ROUNDS", "5"))
PODS = max(20, N // 200 * 20)  # 2,000 at the default size; a multiple of the 20 namespaces
RATE_BUDGET, RATIO_BUDGET, UNIQUE_RATIO_BUDGET = 20_000.0, 2.0, 4.0
NOW = datetime(2026, 1, 5, 10, 35, tzinfo=UTC)
REASONS = [
    ("BackOff", "Back-off restarting failed container app"),
    ("Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 500"),
    ("FailedScheduling", "0/3 nodes are available: 3 Insufficient memory."),
    ("OOMKilling", "Memory cgroup out of memory: Killed process 4242"),
]
HOOKED_REASONS = [r for r in REASONS if r[0] != "FailedScheduling"]


def k8s_event(i: int, reason: str, message: str, pod: str) -> str:
    ns = f"team-{i % 20}"
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"web-{i}.18a2f",
                "namespace": ns,
                "uid": f"uid-{i}",
                "resourceVersion": str(48213 + i),
                "creationTimestamp": "2026-01-05T10:30:00Z",
            },
            "involvedObject": {
                "kind": "Pod",
                "namespace": ns,
                "name": pod,
                "uid": f"pod-{i}",
                "apiVersion": "v1",
                "fieldPath": "spec.containers{app}",
            },
            "reason": reason,
            "message": message,
            "type": "Warning",
            "count": 1 + i % 7,
            "firstTimestamp": "2026-01-05T10:30:00Z",
            "lastTimestamp": "2026-01-05T10:31:12Z",
            "source": {"component": "kubelet", "host": "node-3"},
            "eventTime": None,
            "reportingComponent": "kubelet",
            "reportingInstance": "node-3",
        }
    )


def storm_mix() -> list[str]:
    """``PODS`` pods (``web-{i % PODS}``), a quarter of the events unhooked, most duplicates."""
    return [k8s_event(i, *REASONS[i % len(REASONS)], pod=f"web-{i % PODS}") for i in range(N)]


def all_unique() -> list[str]:
    """Every event a different pod with a hooked reason: every one fires."""
    return [
        k8s_event(i, *HOOKED_REASONS[i % len(HOOKED_REASONS)], pod=f"web-{i}") for i in range(N)
    ]


HOOKS = "".join(
    f"""---
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {{name: health, namespace: team-{n}}}
spec:
  eventConfigurations:
  - eventType: pod-restart
    agentRef: {{name: k8s-agent, namespace: kagent}}
    prompt: "Pod {{{{.ResourceName}}}} restarted ({{{{.Reason}}}}) at {{{{.EventTime}}}}."
  - eventType: probe-failed
    agentRef: {{name: k8s-agent, namespace: kagent}}
    prompt: "Probe of {{{{.ResourceName}}}} failed: {{{{.EventMessage}}}}"
  - eventType: oom-kill
    agentRef: {{name: k8s-agent, namespace: kagent}}
    prompt: "{{{{.ResourceName}}}} ran out of memory."
"""
    for n in range(20)
)


WHEN = "event.resource.kind == 'Pod' && event.reason != '' && event.count >= 1"
"""A realistic condition on what the event carries: a resource kind, a reason and a count."""
WHEN_MAPPED = "event.severity in ['warning', 'error', 'critical'] && event.count >= 1"
"""One that reads the severity, which applies the mapping row before matching (as
``minSeverity`` does): reported beside, unbudgeted, to show what that costs."""
WHEN_BUDGET = 1.10


CORRELATE = "{by: workload, window: 10m, followUpInterval: 2m}"
CORRELATION_BUDGET = 1.20


def with_correlation(hooks: str) -> str:
    """``hooks`` with ``correlate:`` on every event configuration."""
    return hooks.replace("    prompt:", f"    correlate: {CORRELATE}\n    prompt:")


def correlation_report(runtimes: dict[str, Callable[[], Runtime]]) -> None:
    """Correlation on / off, paired rounds, storm mix (the decisions are printed, not
    compared: correlation changes them by design)."""
    ratios, best, counts = measure_when(
        storm_mix(), {"plain": runtimes["plain"], "correlate": runtimes["correlate"]}
    )
    print(f"  correlation: decisions {_texts(counts['correlate'])}")
    pairs = f"median of {WHEN_ROUNDS} paired rounds, CPU time"
    figure(
        f"pipeline events/s of CPU, storm mix, correlate: on every hook (best of {WHEN_ROUNDS})",
        N / best["correlate"],
        "ev/s",
        "n/a",
        None,
    )
    figure(
        f"pipeline cost with correlate: on every hook / without, storm mix ({pairs})",
        ratios["correlate"],
        "x",
        f"<= {CORRELATION_BUDGET:.2f}",
        ratios["correlate"] <= CORRELATION_BUDGET,
        covers="pipeline:correlation",
    )


def with_when(hooks: str, when: str) -> str:
    """``hooks`` with ``when`` on every event configuration."""
    return hooks.replace("    prompt:", f'    when: "{when}"\n    prompt:')


WHEN_ROUNDS = 2 * ROUNDS + 1
"""Paired rounds of the comparison (11 by default): a ratio is the median of the rounds'."""


def measure_when(
    raws: list[str], runtimes: dict[str, Callable[[], Runtime]]
) -> tuple[dict[str, float], dict[str, float], dict[str, Counter[str]]]:
    """Per run of ``runtimes`` (the first is the baseline): the median over ``WHEN_ROUNDS`` of
    each round's ratio to the baseline, the best time, and the decisions.

    Each round runs them all, in turns (the order reverses every round), and compares them with
    each other: the ratio of runs seconds apart is steadier than one best-of time against
    another when other work shares the machine. Times are this process's CPU time.
    """
    ratios: dict[str, list[float]] = {name: [] for name in runtimes}
    best: dict[str, float] = dict.fromkeys(runtimes, float("inf"))
    counts: dict[str, Counter[str]] = {}
    baseline = next(iter(runtimes))
    runs = list(runtimes.items())
    for _ in range(WHEN_ROUNDS):
        runs.reverse()
        seconds: dict[str, float] = {}
        for name, new_runtime in runs:
            runtime = new_runtime()
            tally: Counter[str] = Counter()
            start = time.process_time()
            for raw in raws:
                for d in run_pipeline("kubernetes", json.loads(raw), {}, runtime=runtime):
                    tally[d.decision] += 1
            seconds[name] = time.process_time() - start
            counts[name] = tally
            best[name] = min(best[name], seconds[name])
        for name in runtimes:
            ratios[name].append(seconds[name] / seconds[baseline])
    return {n: statistics.median(r) for n, r in ratios.items()}, best, counts


def measure(
    raws: list[str], new_runtime: Callable[[], Runtime]
) -> tuple[float, float, Counter[str]]:
    """Best-of-ROUNDS seconds for the floor and for the pipeline, and the pipeline's decisions."""
    source = new_runtime().config.sources.get("kubernetes")
    # Event dicts the floor validates: what the pipeline builds from the same payloads.
    event_dicts: list[dict[str, Any]] = [
        source.normalize(json.loads(r), {})[0].model_dump() for r in raws
    ]
    floor_times, pipe_times = [], []
    counts: Counter[str] = Counter()
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for raw, event in zip(raws, event_dicts, strict=True):
            json.loads(raw)
            Event.model_validate(event)
        floor_times.append(time.perf_counter() - start)

        runtime = new_runtime()
        counts = Counter()
        start = time.perf_counter()
        for raw in raws:
            for d in run_pipeline("kubernetes", json.loads(raw), {}, runtime=runtime):
                counts[d.decision] += 1
        pipe_times.append(time.perf_counter() - start)
    return min(floor_times), min(pipe_times), counts


def _texts(counts: Counter[str]) -> dict[str, int]:
    """Decision counts keyed by their text (a ``DecisionKind`` prints as its enum repr)."""
    return {str(decision): n for decision, n in counts.items()}


def runtime_factory(settings: Settings) -> Callable[[], Runtime]:
    """A fresh runtime (memory state, dry-run dispatch) a call: every round starts empty."""

    def build() -> Runtime:
        return Runtime.build(
            settings, clock=Clock(NOW), store=MemoryStateStore(), dispatcher=DryRunDispatcher()
        )

    return build


def main() -> int:
    logging.disable(logging.INFO)
    with tempfile.TemporaryDirectory() as tmp:
        mappings = Path(__file__).resolve().parents[1] / "config" / "event-mappings.yaml"
        runtimes: dict[str, Callable[[], Runtime]] = {}
        for name, hooks in (
            ("plain", HOOKS),
            ("when", with_when(HOOKS, WHEN)),
            ("when-mapped", with_when(HOOKS, WHEN_MAPPED)),
            ("correlate", with_correlation(HOOKS)),
        ):
            config = Path(tmp) / name
            (config / "hooks").mkdir(parents=True)
            (config / "event-mappings.yaml").write_text(mappings.read_text())
            (config / "hooks" / "hooks.yaml").write_text(hooks)
            runtimes[name] = runtime_factory(
                Settings(config_dir=config, state="memory", dispatch="dry-run")
            )

        only = os.environ.get("KHOOK_BENCH_ONLY", "")
        if not only:
            storm = measure(storm_mix(), runtimes["plain"])
            unique = measure(all_unique(), runtimes["plain"])
            report(*storm, *unique)
            stage_report(
                [
                    (name, *stage_seconds(raws, runtimes["plain"], counts["dispatched"]))
                    for name, raws, (_, _, counts) in (
                        ("storm mix", storm_mix(), storm),
                        ("all unique", all_unique(), unique),
                    )
                ]
            )
        if only in ("", "correlation"):
            correlation_report(runtimes)
            if only:
                return 0
        when_runs = {k: v for k, v in runtimes.items() if k != "correlate"}
        ratios, best, counts = measure_when(storm_mix(), when_runs)

    print(f"  conditions: a when: on every hook, decisions {_texts(counts['when'])}")
    if any(tally != counts["plain"] for tally in counts.values()):
        # The figures compare the same run with and without conditions that are all true.
        raise RuntimeError(f"conditions changed the decisions: {counts}")
    pairs = f"median of {WHEN_ROUNDS} paired rounds, CPU time"
    figure(
        f"pipeline events/s of CPU, storm mix, a when: on every hook (best of {WHEN_ROUNDS})",
        N / best["when"],
        "ev/s",
        "n/a",
        None,
    )
    figure(
        f"pipeline cost with a when: on every hook / without, storm mix ({pairs})",
        ratios["when"],
        "x",
        f"<= {WHEN_BUDGET:.2f}",
        ratios["when"] <= WHEN_BUDGET,
    )
    figure(
        f"the same with a when: reading the severity (mapping row first) / without ({pairs})",
        ratios["when-mapped"],
        "x",
        "n/a",
        None,
    )
    for label, text in (("this benchmark's", WHEN), ("a three-clause", EXAMPLE_WHEN)):
        figure(
            f"one evaluation of {label} when: (best of {ROUNDS} x 100,000)",
            evaluation_us(text),
            "us",
            "n/a",
            None,
        )
    return 0


EXAMPLE_WHEN = (
    "event.severity in ['error', 'critical'] && event.tags.team == 'payments' && event.count >= 3"
)
"""docs/hooks.md's first example: a severity, a tag and a count threshold."""


def evaluation_us(text: str) -> float:
    """Microseconds of one evaluation of ``text`` on a matching event (compiled once)."""
    condition = conditions.compile_event_condition(text)
    event = Event.trusted(
        id=EventId("e"),
        source="kubernetes",
        type="pod-restart",
        severity=Severity.ERROR,
        reason="BackOff",
        count=3,
        resource=Resource.trusted("Pod", "web-0", "shop", "", "v1"),
        timestamp=NOW,
        tags={"team": "payments"},
    )
    if not condition(event):
        raise RuntimeError(f"{text} does not match the measured event")
    calls = 100_000
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(calls):
            condition(event)
        best = min(best, time.perf_counter() - start)
    return best / calls * 1e6


def report(
    storm_floor: float,
    storm_pipe: float,
    storm_counts: Counter[str],
    unique_floor: float,
    unique_pipe: float,
    unique_counts: Counter[str],
) -> None:
    """The design budget's figures (storm mix) and the all-unique stream beside them."""
    best = f"best of {ROUNDS}"
    fired = storm_counts["dispatched"]
    print(f"pipeline throughput, {N:,} Kubernetes Events a workload, {best} rounds each")
    print(
        f"  storm mix: {fired:,} of {N:,} fire ({100 * fired / N:.1f} %), "
        f"decisions {_texts(storm_counts)}"
    )
    figure(
        f"pipeline events/s, storm mix: design workload ({best})",
        N / storm_pipe,
        "ev/s",
        f">= {RATE_BUDGET:,.0f}",
        N / storm_pipe >= RATE_BUDGET,
        covers="pipeline:rate",
    )
    figure(
        f"floor: json.loads + Event.model_validate, storm mix, events/s ({best})",
        N / storm_floor,
        "ev/s",
        "-",
        None,
    )
    figure(
        f"pipeline cost / floor cost, storm mix ({best} each)",
        storm_pipe / storm_floor,
        "x",
        f"<= {RATIO_BUDGET:.1f}",
        storm_pipe / storm_floor <= RATIO_BUDGET,
        covers="pipeline:ratio",
    )

    print(f"  all unique: decisions {_texts(unique_counts)}")
    if unique_counts["dispatched"] != N:
        # The figure's name promises that every event fires; a stream that does not is broken.
        raise RuntimeError(
            f"all-unique stream: only {unique_counts['dispatched']:,} of {N:,} "
            f"events fired: {_texts(unique_counts)}"
        )
    figure(
        f"pipeline events/s, all unique, every event fires ({best})",
        N / unique_pipe,
        "ev/s",
        "n/a",
        None,
    )
    figure(
        f"floor: json.loads + Event.model_validate, all unique, events/s ({best})",
        N / unique_floor,
        "ev/s",
        "-",
        None,
    )
    figure(
        f"pipeline cost / floor cost, all unique ({best} each)",
        unique_pipe / unique_floor,
        "x",
        f"<= {UNIQUE_RATIO_BUDGET:.1f}",
        unique_pipe / unique_floor <= UNIQUE_RATIO_BUDGET,
        covers="pipeline:unique-ratio",
    )


# The per-stage breakdown: each stage of the pipeline timed alone over the events that reach it
# in the pipeline's own run, best of ROUNDS, per event of the workload (a stage that only
# firings reach is spread over every event, as the pipeline's time is).
STAGES: tuple[tuple[str, str], ...] = (
    ("json.loads", "the payload decoded (the floor's first half)"),
    (
        "normalize: raw-Event validation, stable id, Event",
        "a malformed event stops here; a redelivery keeps its id",
    ),
    ("redaction: pre-check and masking", "no secret leaves: every later step sees masked values"),
    ("hook matching (and the mapping row of a firing)", "a hook fires only on what it selects"),
    (
        "claim (memory state): silences first, the claim, its confirmation",
        "atomic claims: one run per dedup key",
    ),
    (
        "decision/admission: storm control's gates, backlogs, circuit",
        "circuit, coalescing and budgets hold a storm back",
    ),
    (
        "prompt rendering: escaping, fenced data block, nonce",
        "prompt safety: event data is data, never instructions",
    ),
    (
        "dry-run dispatch: request building and send",
        "one conversation per incident, the same message id on a redelivery",
    ),
    ("decisions: every event's, the audit record of a firing", "the audit record: one per claim"),
)

Match = tuple[HookRule, Event]


def _match(event: Event, runtime: Runtime) -> list[Match]:
    """``process_event``'s matching: drop reason, candidates, mapping row when asked, ``when:``."""
    if runtime.config.mapping.drop_reason(event.source, event.type) is not None:
        return []
    candidates = runtime.config.hooks.candidates(event)
    if not candidates:
        return []
    for rule in candidates:
        if rule.needs_mapping:
            event = enrich(event, runtime)
            break
    return [(rule, event) for rule in candidates if rule.matches(event)]


def _match_all(events: list[Event], runtime: Runtime) -> tuple[list[Match], list[Event]]:
    """Every event's matches, and the events that match no hook."""
    matches: list[Match] = []
    unmatched: list[Event] = []
    for event in events:
        found = _match(event, runtime)
        if found:
            matches += found
        else:
            unmatched.append(event)
    return matches, unmatched


def _claims(
    matches: list[Match], runtime: Runtime
) -> tuple[list[Attempt], list[tuple[HookRule, Event, DedupKey]]]:
    """``fire`` up to its claim: the silences first, the claim (as ``pipeline._claim`` makes
    it) and the confirmation of each won one; the attempts that fire, and the matches held as
    duplicates (for which, as in ``fire``, no attempt is built)."""
    store = runtime.store
    won: list[Attempt] = []
    held: list[tuple[HookRule, Event, DedupKey]] = []
    for rule, event in matches:
        key = keys.firing(rule, event)
        now = runtime.clock()
        if runtime.silences.check(rule.hook, event, now, runtime.config.windows):
            raise RuntimeError("a silence muted a benchmark event")
        ttl = rule.dedup_window or runtime.default_window
        claimed = store.claim_firing(
            key=key, owner=f"|{event.id}", ttl=ttl, now=now, stale_after=runtime.stale_after
        )
        if claimed == "won":
            store.confirm(key=key, outcome=DecisionKind.DISPATCHED, task_id="")
            won.append(Attempt(runtime, rule, event, key))
        else:
            correlation.settings_for(rule, runtime)  # a repeat may join an incident
            held.append((rule, event, key))
    return won, held


def _admit(firings: list[Attempt], runtime: Runtime) -> None:
    """``fire``'s decision past the claim: correlation's settings, the gates of storm control
    (taken, committed), the held-back backlogs taken, the circuit's success."""
    store = runtime.store
    for attempt in firings:
        rule, event = attempt.rule, attempt.event
        correlation.settings_for(rule, runtime)
        group = keys.group_backlog(rule, event)
        with admission.admit(
            store,
            rule,
            budgets=runtime.config.budgets,
            now=runtime.clock(),
            group=group,
            hold_first=rule.coalesce is not None and not rule.coalesce.leading,
        ) as admitted:
            if admitted.hold is not None:
                raise RuntimeError(f"storm control held a firing back: {admitted.hold}")
            records.merge(
                records.summary_in(store.take_backlog(key=group)) if group is not None else None,
                records.summary_in(store.take_backlog(key=keys.budget_backlog(rule, event))),
            )
            admitted.commit()
        store.record_success(key=keys.circuit(rule))


def _render(firings: list[Attempt]) -> None:
    for attempt in firings:
        attempt.prompt, attempt.prompt_hash = prompt.render_hashed(
            attempt.rule.template, attempt.event, None, ""
        )


def _dispatch(firings: list[Attempt], runtime: Runtime) -> list[DispatchResult]:
    """``firing.run``'s request and send (dry run), and the tracking it starts (none)."""
    results = []
    for attempt in firings:
        rule, event, key = attempt.rule, attempt.event, attempt.key
        push_url, push_token = tracker.push_fields(runtime)
        message_id, context_id = keys.dispatch_ids(key, event.id, attempt.incident)
        request = DispatchRequest.trusted(
            event=event,
            hook=rule.hook,
            target=rule.target,
            prompt=attempt.prompt or "",
            key=key,
            message_id=message_id,
            context_id=context_id,
            time_budget=None,
            verify=False,
            push_url=push_url,
            push_token=push_token,
        )
        result = runtime.dispatcher.dispatch(request)
        runtime.telemetry.dispatch(event.source, 0.0, "ok")
        tracker.start(runtime, request, result, rule)
        results.append(result)
    return results


def _decide(
    firings: list[Attempt],
    results: list[DispatchResult],
    held: list[tuple[HookRule, Event, DedupKey]],
    unmatched: list[Event],
) -> None:
    """Every event's decision: the firings' with their audit records, then the others'."""
    for event in unmatched:
        Decision(DecisionKind.NO_HOOK, event)
    for rule, event, key in held:
        duplicate(rule, event, key)
    for attempt, result in zip(firings, results, strict=True):
        attempt.decide(
            DecisionKind.DISPATCHED,
            task_id=result.task_id,
            detail=result.state,
            record=True,
            outcome=DecisionKind.DISPATCHED,
            recovered=result.recovered,
        )


def stage_seconds(
    raws: list[str], new_runtime: Callable[[], Runtime], fired: int
) -> tuple[list[float], float, float, float]:
    """Best-of-ROUNDS CPU seconds of each of ``STAGES`` over ``raws``, each stage alone on what
    the stage before it produced (a fresh runtime a round, as the pipeline's), of the whole
    pipeline in the same rounds with the garbage collector on and off, and of the floor, so
    every multiple is of one run and one clock; ``fired``: how many the pipeline dispatched,
    which the stages must too.

    The stages run with the collector off, as timeit runs: their lists keep every event of the
    round alive, so a collection would charge the stage that triggers it for objects the
    pipeline never keeps; the collector's own share is the pipeline's on minus off. CPU time,
    as the paired comparisons: on a shared machine a wall-clock stage of a few microseconds an
    event reads other processes' time slices.
    """
    source = new_runtime().config.sources.get("kubernetes")
    event_dicts = [source.normalize(json.loads(r), {})[0].model_dump() for r in raws]
    best = [float("inf")] * len(STAGES)
    floor = collected = uncollected = float("inf")
    for _ in range(ROUNDS):
        start = time.process_time()
        for raw, event in zip(raws, event_dicts, strict=True):
            json.loads(raw)
            Event.model_validate(event)
        floor = min(floor, time.process_time() - start)
        collected = min(collected, _pipeline_seconds(raws, new_runtime()))
        gc.collect()
        gc.disable()
        try:
            uncollected = min(uncollected, _pipeline_seconds(raws, new_runtime()))
            seconds, firings = _stage_round(raws, new_runtime())
        finally:
            gc.enable()
        best = [min(b, s) for b, s in zip(best, seconds, strict=True)]
        if firings != fired:  # the stages must do the pipeline's work, no less
            raise RuntimeError(f"the stages fired {firings:,}, the pipeline {fired:,}")
    return best, collected, uncollected, floor


def _pipeline_seconds(raws: list[str], runtime: Runtime) -> float:
    """CPU seconds of the whole pipeline over ``raws``, as ``measure`` runs it."""
    gc.collect()  # the same heap to start from, whatever ran before
    start = time.process_time()
    for raw in raws:
        run_pipeline("kubernetes", json.loads(raw), {}, runtime=runtime)
    return time.process_time() - start


def _stage_round(raws: list[str], runtime: Runtime) -> tuple[list[float], int]:
    """One round of the stages: each one's seconds, and how many fired."""
    plugin = runtime.config.sources.get("kubernetes")
    clock = time.process_time
    t0 = clock()
    payloads = [json.loads(raw) for raw in raws]
    t1 = clock()
    events = [e for payload in payloads for e in plugin.normalize(payload, {})]
    t2 = clock()
    events = runtime.redactor.events(events)
    t3 = clock()
    matches, unmatched = _match_all(events, runtime)
    t4 = clock()
    firings, held = _claims(matches, runtime)
    t5 = clock()
    t6 = clock()
    _enrich(firings, runtime)  # the mapping row, applied once a claim is won: matching's
    t7 = clock()
    _admit(firings, runtime)
    t8 = clock()
    _render(firings)
    t9 = clock()
    results = _dispatch(firings, runtime)
    t10 = clock()
    _decide(firings, results, held, unmatched)
    t11 = clock()
    seconds = [
        t1 - t0,
        t2 - t1,
        t3 - t2,
        (t4 - t3) + (t7 - t6),
        t5 - t4,
        t8 - t7,
        t9 - t8,
        t10 - t9,
        t11 - t10,
    ]
    return seconds, len(firings)


def _enrich(firings: list[Attempt], runtime: Runtime) -> None:
    for attempt in firings:
        attempt.event = enrich(attempt.event, runtime)


def stage_report(workloads: list[tuple[str, list[float], float, float, float]]) -> None:
    """Each stage in microseconds per event and as a multiple of the floor, beside the
    guarantee it serves; then their sum, the whole pipeline's time beside it (the rest: the
    calls between the stages) and the garbage collector's share."""
    print(f"  per stage, each alone over the same events (best of {ROUNDS}, CPU time)")
    rows: list[list[str]] = []
    for s, (stage, guarantee) in enumerate(STAGES):
        row = [stage, guarantee]
        for workload, seconds, _, _, floor in workloads:
            us = seconds[s] / N * 1e6
            figure(f"stage {s + 1}, {workload}: {stage} ({guarantee})", us, "us/ev", "n/a", None)
            row += [f"{us:.2f}", f"{seconds[s] / floor:.2f}x"]
        rows.append(row)
    totals = {
        "sum of the stages": [],
        "the whole pipeline, collector off (the same rounds)": [],
        "the rest: the calls between the stages": [],
        "garbage collection: the pipeline with the collector on minus off": [],
        "the whole pipeline, collector on": [],
    }
    cells = list(totals.values())
    for workload, seconds, collected, uncollected, floor in workloads:
        summed = sum(seconds)
        figure(
            f"stages summed / the whole pipeline, collector off, {workload}",
            summed / uncollected,
            "x",
            "n/a",
            None,
        )
        figure(
            f"garbage collection / the whole pipeline, {workload}",
            (collected - uncollected) / collected,
            "x",
            "n/a",
            None,
        )
        for cell, value in zip(
            cells,
            (summed, uncollected, uncollected - summed, collected - uncollected, collected),
            strict=True,
        ):
            cell += [f"{value / N * 1e6:.2f}", f"{value / floor:.2f}x"]
    rows += [[name, "", *values] for name, values in totals.items()]
    header = ["stage", "guarantee it serves"]
    for workload, *_ in workloads:
        header += [f"{workload} us/event", f"{workload} x floor"]
    for row in rows:
        print("    " + " | ".join(row))
    table(
        "pipeline cost per stage, each stage alone over the same events",
        header,
        rows,
        note=f"best of {ROUNDS} rounds each, CPU time; a stage only firings reach is spread "
        "over every event of the workload, as the pipeline's time is; the floor (json.loads + "
        "Event.model_validate) is timed in the same rounds",
    )


if __name__ == "__main__":
    sys.exit(main())
