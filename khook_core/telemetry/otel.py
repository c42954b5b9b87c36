"""The OpenTelemetry implementation of ``Telemetry``, imported only when telemetry is on.

Each process owns its tracer and meter providers (nothing is installed as OpenTelemetry's
global provider), so a library that also uses OpenTelemetry keeps its own setup and tests can
build one per case. Only the W3C Trace Context format is read and written.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from khook_core.telemetry import SpanKind, Telemetry
from khook_core.telemetry import exporters as exporting

if TYPE_CHECKING:
    from khook_core.settings import TelemetrySettings

INSTRUMENTATION: Final = "khook"
_KINDS: Final = {
    "internal": trace.SpanKind.INTERNAL,
    "producer": trace.SpanKind.PRODUCER,
    "consumer": trace.SpanKind.CONSUMER,
    "server": trace.SpanKind.SERVER,
    "client": trace.SpanKind.CLIENT,
}
LATENCY_BOUNDARIES: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
"""Seconds: a claim takes milliseconds (SQLite) to tens of them (Firestore); a dispatch up to
the dispatch budget (45 s by default)."""


class OtelTelemetry(Telemetry):
    """Spans and metrics through the OpenTelemetry SDK (see ``khook_core.telemetry``)."""

    enabled = True

    def __init__(
        self,
        settings: TelemetrySettings,
        *,
        function: str,
        span_exporter: SpanExporter | None = None,
        metric_reader: MetricReader | None = None,
    ) -> None:
        self.function = function
        resource = Resource(
            {
                "service.name": f"khook-{function}",
                "service.namespace": "khook",
                # One time series an instance: Cloud Monitoring refuses two writers of one series.
                "service.instance.id": uuid.uuid4().hex,
            }
        )
        processor: SpanProcessor
        if span_exporter is not None:
            processor = SimpleSpanProcessor(span_exporter)
        else:
            processor = exporting.span_processor(settings.mode)
        self.tracer_provider = TracerProvider(
            resource=resource, sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio))
        )
        self.tracer_provider.add_span_processor(processor)
        self.tracer = self.tracer_provider.get_tracer(INSTRUMENTATION)
        if metric_reader is None:
            metric_reader = PeriodicExportingMetricReader(
                exporting.metric_exporter(settings.mode),
                export_interval_millis=settings.export_interval * 1000,
            )
        self.meter_provider = MeterProvider(resource=resource, metric_readers=[metric_reader])
        meter = self.meter_provider.get_meter(INSTRUMENTATION)
        self.propagator = TraceContextTextMapPropagator()
        self._events_in = meter.create_counter(
            "khook.events.in", unit="{event}", description="Events normalised from deliveries"
        )
        self._decisions = meter.create_counter(
            "khook.decisions", unit="{decision}", description="Pipeline decisions by kind"
        )
        self._claim = meter.create_histogram(
            "khook.claim.duration",
            unit="s",
            description="State store claim latency",
            explicit_bucket_boundaries_advisory=LATENCY_BOUNDARIES,
        )
        self._dispatch = meter.create_histogram(
            "khook.dispatch.duration",
            unit="s",
            description="Dispatch latency by outcome",
            explicit_bucket_boundaries_advisory=LATENCY_BOUNDARIES,
        )
        self._dispatches = meter.create_counter(
            "khook.dispatches", unit="{dispatch}", description="Dispatches by outcome"
        )
        self._backlog = meter.create_histogram(
            "khook.backlog.size",
            unit="{event}",
            description="Events a run carried from storm control's backlog",
        )
        self._reloads = meter.create_counter(
            "khook.config.reloads", unit="{reload}", description="Live configuration reloads"
        )
        self._masked = meter.create_counter(
            "khook.redaction.masked", unit="{value}", description="Values masked by redaction"
        )

    # -- traces -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _span(
        self,
        name: str,
        parent: Mapping[str, str] | None,
        kind: SpanKind,
        start_ns: int | None,
        attributes: Mapping[str, str] | None,
    ) -> Iterator[None]:
        context = self.propagator.extract(parent) if parent is not None else None
        with self.tracer.start_as_current_span(
            name,
            context=context,
            kind=_KINDS[kind],
            start_time=start_ns,
            attributes=dict(attributes) if attributes else None,
            # Exceptions are the pipeline's control flow (``Dropped``) or become decisions:
            # the decisions say how an event ended, a traceback a span would not.
            record_exception=False,
            set_status_on_exception=False,
        ):
            yield

    def span(
        self,
        name: str,
        *,
        parent: Mapping[str, str] | None = None,
        kind: SpanKind = "internal",
        start_ns: int | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> contextlib.AbstractContextManager[None]:
        return self._span(name, parent, kind, start_ns, attributes)

    def record_span(self, name: str, start_ns: int, end_ns: int) -> None:
        self.tracer.start_span(name, start_time=start_ns).end(end_time=end_ns)

    def trace_headers(self) -> dict[str, str]:
        carrier: dict[str, str] = {}
        self.propagator.inject(carrier, context=otel_context.get_current())
        return carrier

    # -- metrics ------------------------------------------------------------------------------

    def _attrs(self, source: str, **more: str) -> dict[str, Any]:
        return {"source": source, "function": self.function, **more}

    def event_in(self, source: str) -> None:
        self._events_in.add(1, self._attrs(source))

    def decision(self, source: str, decision: str) -> None:
        self._decisions.add(1, self._attrs(source, decision=decision))

    def claim(self, source: str, seconds: float, result: str) -> None:
        self._claim.record(seconds, self._attrs(source, result=result))

    def dispatch(self, source: str, seconds: float, outcome: str) -> None:
        attrs = self._attrs(source, outcome=outcome)
        self._dispatch.record(seconds, attrs)
        self._dispatches.add(1, attrs)

    def backlog(self, source: str, size: int) -> None:
        self._backlog.record(size, self._attrs(source))

    def reload(self, outcome: str) -> None:
        self._reloads.add(1, {"function": self.function, "outcome": outcome})

    def masked(self, source: str, kind: str, count: int) -> None:
        self._masked.add(count, self._attrs(source, kind=kind))

    def close(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
