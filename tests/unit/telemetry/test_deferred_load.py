"""Telemetry on serves events before the SDK is loaded and loses nothing when it loads.

Spans and metrics recorded first as plain records must reach OpenTelemetry's in-memory
exporters exactly as the SDK alone would have recorded them: metric names, attributes, sums
and histogram counts; span names, parents and the trace of the sender; and the agent call's
``traceparent`` names the dispatch span even though that span was made without the SDK.
"""

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
from khook_core.pipeline import run_pipeline
from khook_core.runtime import Clock, Runtime
from khook_core.settings import Settings, TelemetrySettings
from khook_core.state.memory import MemoryStateStore
from khook_core.telemetry.deferred import DeferredTelemetry
from tests.support.configdir import SHOP_HOOK, make_config
from tests.support.k8s_events import core_event

NOW = datetime(2026, 1, 5, 10, 35, tzinfo=UTC)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def points(reader: InMemoryMetricReader, name: str) -> dict[tuple[tuple[str, Any], ...], Any]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        tuple(sorted((p.attributes or {}).items())): p
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for p in metric.data.data_points
    }


class Deferred:
    def __init__(self, tmp_path: Path, settings: TelemetrySettings) -> None:
        self.spans = InMemorySpanExporter()
        self.metrics = InMemoryMetricReader()
        tracing = telemetry.build(
            settings,
            function="kubernetes",
            span_exporter=self.spans,
            metric_reader=self.metrics,
            load_now=False,
        )
        assert isinstance(tracing, DeferredTelemetry)
        self.telemetry = tracing
        self.runtime = Runtime.build(
            Settings(
                config_dir=make_config(tmp_path, SHOP_HOOK), state="memory", dispatch="dry-run"
            ),
            clock=Clock(NOW),
            store=MemoryStateStore(),
            dispatcher=DryRunDispatcher(),
            telemetry=tracing,
        )


@pytest.fixture
def deferred(tmp_path: Path) -> Iterator[Deferred]:
    d = Deferred(tmp_path, TelemetrySettings(mode="console"))
    yield d
    d.runtime.close()


def test_metrics_recorded_before_the_sdk_loaded_reach_its_reader(deferred: Deferred):
    rt = deferred.runtime
    run_pipeline("kubernetes", core_event(), {}, runtime=rt)  # before: plain records
    assert not deferred.telemetry.loaded
    assert deferred.spans.get_finished_spans() == ()

    deferred.telemetry.load()
    run_pipeline("kubernetes", core_event(), {}, runtime=rt)  # after: the SDK's instruments
    rt.telemetry.reload("loaded")

    events = points(deferred.metrics, "khook.events.in")
    assert {k: p.value for k, p in events.items()} == {
        (("function", "kubernetes"), ("source", "kubernetes")): 2
    }
    decisions = points(deferred.metrics, "khook.decisions")
    assert {dict(k)["decision"]: p.value for k, p in decisions.items()} == {
        "dispatched": 2,
        "duplicate": 2,
    }
    claims = points(deferred.metrics, "khook.claim.duration")
    assert {(dict(k)["result"], dict(k)["source"]): p.count for k, p in claims.items()} == {
        ("won", "kubernetes"): 2,
        ("held", "kubernetes"): 2,
    }
    dispatched = points(deferred.metrics, "khook.dispatch.duration")
    [(attributes, point)] = dispatched.items()
    assert (dict(attributes)["outcome"], point.count) == ("ok", 2)
    assert point.sum > 0
    assert sum(point.bucket_counts) == 2
    assert {
        dict(k)["outcome"]: p.value for k, p in points(deferred.metrics, "khook.dispatches").items()
    } == {"ok": 2}
    assert [p.value for p in points(deferred.metrics, "khook.config.reloads").values()] == [1]


def test_spans_made_before_the_sdk_loaded_keep_the_senders_trace_and_parents(
    deferred: Deferred,
):
    rt = deferred.runtime
    with rt.telemetry.span("receive kubernetes", parent={"traceparent": PARENT}, kind="consumer"):
        rt.telemetry.record_span("decode", 1, 2)
        run_pipeline("kubernetes", core_event(), {}, runtime=rt)
    dispatcher = rt.dispatcher
    assert isinstance(dispatcher, DryRunDispatcher)
    headers = [r.trace_headers["traceparent"] for r in dispatcher.requests]
    assert not deferred.telemetry.loaded

    deferred.telemetry.load()

    spans = deferred.spans.get_finished_spans()
    assert {format(s.context.trace_id, "032x") for s in spans} == {TRACE_ID}
    by_name = {s.name: s for s in spans}
    assert {"receive kubernetes", "decode", "normalize", "claim", "dispatch"} <= set(by_name)
    received = by_name["receive kubernetes"]
    assert received.parent is not None
    assert received.parent.is_remote
    assert format(received.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert received.kind.name == "CONSUMER"
    assert by_name["decode"].parent == received.context
    assert by_name["normalize"].parent == received.context
    assert dict(received.resource.attributes)["service.name"] == "khook-kubernetes"
    dispatch_ids = {format(s.context.span_id, "016x") for s in spans if s.name == "dispatch"}
    # A measurement made in a span links to it (the SDK's exemplars), as if the SDK had been there.
    [events] = points(deferred.metrics, "khook.events.in").values()
    assert {format(e.trace_id, "032x") for e in events.exemplars} == {TRACE_ID}
    assert len(headers) == 2
    for header in headers:
        version, trace_id, span_id, flags = header.split("-")
        assert (version, trace_id, flags) == ("00", TRACE_ID, "01")
        assert span_id in dispatch_ids  # the agent's parent is the dispatch span


def test_a_sender_that_does_not_sample_is_followed_and_nothing_is_exported(tmp_path: Path):
    d = Deferred(tmp_path, TelemetrySettings(mode="console"))
    try:
        with d.telemetry.span("receive kubernetes", parent={"traceparent": PARENT[:-2] + "00"}):
            header = d.telemetry.trace_headers()["traceparent"]
        d.telemetry.load()
        assert header.startswith(f"00-{TRACE_ID}-")
        assert header.endswith("-00")
        assert d.spans.get_finished_spans() == ()
    finally:
        d.runtime.close()


def test_a_new_trace_is_sampled_by_the_ratio_and_an_invalid_parent_starts_one(tmp_path: Path):
    d = Deferred(tmp_path, TelemetrySettings(mode="console", sample_ratio=0.0))
    try:
        with d.telemetry.span("receive", parent={"traceparent": "00-" + "0" * 32 + "-1-01"}):
            header = d.telemetry.trace_headers()["traceparent"]
        assert header.endswith("-00")
        assert TRACE_ID not in header
        d.telemetry.load()
        assert d.spans.get_finished_spans() == ()
    finally:
        d.runtime.close()


def test_closing_loads_the_sdk_and_exports_what_was_recorded(tmp_path: Path):
    d = Deferred(tmp_path, TelemetrySettings(mode="console"))
    with d.telemetry.span("publish kubernetes", kind="producer"):
        pass
    d.telemetry.masked("kubernetes", "token", 3)
    d.runtime.close()

    assert [s.name for s in d.spans.get_finished_spans()] == ["publish kubernetes"]
    assert d.telemetry.loaded


def test_the_sdk_loads_by_itself_after_the_first_answer(tmp_path: Path):
    d = Deferred(tmp_path, TelemetrySettings(mode="console"))
    try:
        with d.telemetry.span("receive kubernetes"):
            pass
        # Loaded by a thread of its own, scheduled as the root span ended.
        assert d.telemetry.wait_loaded(timeout=60)
        assert d.telemetry.loaded
        assert [s.name for s in d.spans.get_finished_spans()] == ["receive kubernetes"]
    finally:
        d.runtime.close()
