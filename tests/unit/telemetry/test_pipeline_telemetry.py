"""What the pipeline reports through telemetry, read back from OpenTelemetry's in-memory
exporters: metric names and attributes, and one trace from normalize to the agent call."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from khook_core import telemetry
from khook_core.dispatch.dryrun import DryRunDispatcher
from khook_core.errors import DispatchError, OutcomeUnknownError, TransientError
from khook_core.pipeline import run_pipeline
from khook_core.runtime import Clock, Runtime
from khook_core.settings import Settings, TelemetrySettings
from khook_core.state.memory import MemoryStateStore
from tests.support.configdir import SHOP_HOOK, make_config
from tests.support.dispatchers import FlakyDispatcher
from tests.support.k8s_events import core_event

NOW = datetime(2026, 1, 5, 10, 35, tzinfo=UTC)
PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
"""A sender's W3C traceparent: the trace the pipeline's spans must join."""


class Exported:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.metrics = InMemoryMetricReader()

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, point) of every point of metric ``name`` collected so far."""
        data = self.metrics.get_metrics_data()
        assert data is not None
        found = []
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found += [(dict(p.attributes or {}), p) for p in metric.data.data_points]
        return found

    def sums(self, name: str, *keys: str) -> dict[tuple[str, ...], int]:
        return {tuple(str(a[k]) for k in keys): p.value for a, p in self.points(name)}


@pytest.fixture
def exported() -> Exported:
    return Exported()


def build(tmp_path: Path, exported: Exported, dispatcher: DryRunDispatcher) -> Runtime:
    tracing = telemetry.build(
        TelemetrySettings(),
        function="kubernetes",
        span_exporter=exported.spans,
        metric_reader=exported.metrics,
    )
    return Runtime.build(
        Settings(config_dir=make_config(tmp_path, SHOP_HOOK), state="memory", dispatch="dry-run"),
        clock=Clock(NOW),
        store=MemoryStateStore(),
        dispatcher=dispatcher,
        telemetry=tracing,
    )


@pytest.fixture
def runtime(tmp_path: Path, exported: Exported) -> Iterator[Runtime]:
    rt = build(tmp_path, exported, DryRunDispatcher())
    yield rt
    rt.close()


def test_events_decisions_and_latencies_are_counted_per_source_and_function(
    runtime: Runtime, exported: Exported
):
    run_pipeline("kubernetes", core_event(), {}, runtime=runtime)
    run_pipeline("kubernetes", core_event(), {}, runtime=runtime)  # both hooks: duplicates

    assert exported.sums("khook.events.in", "source", "function") == {
        ("kubernetes", "kubernetes"): 2
    }
    assert exported.sums("khook.decisions", "decision") == {("dispatched",): 2, ("duplicate",): 2}
    claims = {
        (a["result"], a["source"]): p.count for a, p in exported.points("khook.claim.duration")
    }
    assert claims == {("won", "kubernetes"): 2, ("held", "kubernetes"): 2}
    dispatches = exported.points("khook.dispatch.duration")
    assert [(a["outcome"], a["function"], p.count) for a, p in dispatches] == [
        ("ok", "kubernetes", 2)
    ]
    assert exported.sums("khook.dispatches", "outcome") == {("ok",): 2}


def test_a_failed_dispatch_is_counted_by_its_outcome(tmp_path: Path, exported: Exported):
    rt = build(tmp_path, exported, FlakyDispatcher(1, TransientError("agent unreachable")))
    try:
        run_pipeline("kubernetes", core_event(), {}, runtime=rt)
    finally:
        rt.close()

    assert exported.sums("khook.dispatches", "outcome") == {("transient",): 1, ("ok",): 1}
    assert exported.sums("khook.decisions", "decision") == {
        ("failed:transient",): 1,
        ("dispatched",): 1,
    }


FAILURES = [
    (TransientError("agent unreachable"), "transient"),
    (OutcomeUnknownError("no answer"), "uncertain"),
    (DispatchError("refused"), "rejected"),
]
"""Each way a dispatch can fail and its ``khook.dispatches`` outcome (the first is counted by
the test above)."""


@pytest.mark.parametrize(("error", "outcome"), FAILURES[1:], ids=[o for _, o in FAILURES[1:]])
def test_the_other_ways_a_dispatch_fails_are_counted_by_their_outcome(
    tmp_path: Path, exported: Exported, error: Exception, outcome: str
):
    rt = build(tmp_path, exported, FlakyDispatcher(1, error))
    try:
        run_pipeline("kubernetes", core_event(), {}, runtime=rt)
    finally:
        rt.close()

    assert exported.sums("khook.dispatches", "outcome") == {(outcome,): 1, ("ok",): 1}


class Counting(telemetry.Telemetry):
    """Off (``enabled`` False, as ``NOOP``), counting the dispatch metric calls it is given."""

    def __init__(self) -> None:
        self.dispatches: list[str] = []

    def dispatch(self, source: str, seconds: float, outcome: str) -> None:
        self.dispatches.append(outcome)


@pytest.mark.parametrize(("error", "outcome"), FAILURES, ids=[o for _, o in FAILURES])
def test_off_no_dispatch_is_timed_whichever_way_it_ends(
    tmp_path: Path, error: Exception, outcome: str
):
    off = Counting()
    rt = Runtime.build(
        Settings(config_dir=make_config(tmp_path, SHOP_HOOK), state="memory", dispatch="dry-run"),
        clock=Clock(NOW),
        store=MemoryStateStore(),
        dispatcher=FlakyDispatcher(1, error),
        telemetry=off,
    )
    try:
        decisions = run_pipeline("kubernetes", core_event(), {}, runtime=rt)
    finally:
        rt.close()

    assert decisions[0].decision.startswith("failed:")  # the failure path was taken
    assert off.dispatches == []


def test_values_the_redaction_step_masks_are_counted_by_kind(runtime: Runtime, exported: Exported):
    secret = "password=hunter2hunter2 token ghp_" + "a" * 36
    run_pipeline("kubernetes", core_event(message=f"login failed: {secret}"), {}, runtime=runtime)

    masked = exported.sums("khook.redaction.masked", "source", "kind")
    assert masked
    assert {source for source, _ in masked} == {"kubernetes"}
    assert sum(masked.values()) == sum(
        n for (source, _), n in runtime.redactor.counts.items() if source == "kubernetes"
    )


def test_the_pipeline_spans_join_the_senders_trace_and_the_agent_call_carries_it(
    runtime: Runtime, exported: Exported
):
    with runtime.telemetry.span("receive kubernetes", parent={"traceparent": PARENT}):
        run_pipeline("kubernetes", core_event(), {}, runtime=runtime)

    spans = exported.spans.get_finished_spans()
    assert {format(s.context.trace_id, "032x") for s in spans} == {PARENT.split("-")[1]}
    names = [s.name for s in spans]
    assert {"normalize", "claim", "dispatch", "receive kubernetes"} <= set(names)
    dispatcher = runtime.dispatcher
    assert isinstance(dispatcher, DryRunDispatcher)
    dispatch_spans = {format(s.context.span_id, "016x") for s in spans if s.name == "dispatch"}
    for request in dispatcher.requests:
        version, trace_id, span_id, _ = request.trace_headers["traceparent"].split("-")
        assert (version, trace_id) == ("00", PARENT.split("-")[1])
        assert span_id in dispatch_spans  # the agent's parent is the dispatch span


def test_off_is_the_no_op_and_sends_no_trace_headers(tmp_path: Path):
    rt = Runtime.build(
        Settings(config_dir=make_config(tmp_path, SHOP_HOOK), state="memory", dispatch="dry-run"),
        clock=Clock(NOW),
        store=MemoryStateStore(),
        dispatcher=DryRunDispatcher(),
        telemetry=telemetry.build(TelemetrySettings(), function="kubernetes"),
    )
    try:
        run_pipeline("kubernetes", core_event(), {}, runtime=rt)
    finally:
        rt.close()

    assert rt.telemetry is telemetry.NOOP
    dispatcher = rt.dispatcher
    assert isinstance(dispatcher, DryRunDispatcher)
    assert [dict(r.trace_headers) for r in dispatcher.requests] == [{}, {}]
