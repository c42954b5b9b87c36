"""The OpenTelemetry SDK behind ``DeferredTelemetry``: loaded off the request path.

``deferred`` starts, propagates and times spans and counts metrics itself, from the first
event; this module, imported when they are first exported, turns its finished spans into the
SDK's ``ReadableSpan`` for the span processor and replays its counts into the SDK's
instruments. Each process owns its processor and meter provider (nothing is installed as
OpenTelemetry's global provider), so a library that also uses OpenTelemetry keeps its own
setup and tests can build one per case.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from khook_core.telemetry import exporters as exporting

if TYPE_CHECKING:
    from khook_core.settings import TelemetrySettings
    from khook_core.telemetry.deferred import Measurement, SpanRecord
    from khook_core.telemetry.tracecontext import SpanContext

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


class Exporting:
    """The span processor and the metric instruments of one process."""

    def __init__(
        self,
        settings: TelemetrySettings,
        *,
        function: str,
        instance: str,
        span_exporter: SpanExporter | None = None,
        metric_reader: MetricReader | None = None,
    ) -> None:
        self.resource = Resource(
            {
                "service.name": f"khook-{function}",
                "service.namespace": "khook",
                # One time series an instance: Cloud Monitoring refuses two writers of one series.
                "service.instance.id": instance,
            }
        )
        self.scope = InstrumentationScope(INSTRUMENTATION)
        self.processor: SpanProcessor = (
            SimpleSpanProcessor(span_exporter)
            if span_exporter is not None
            else exporting.span_processor(settings.mode)
        )
        if metric_reader is None:
            metric_reader = PeriodicExportingMetricReader(
                exporting.metric_exporter(settings.mode),
                export_interval_millis=settings.export_interval * 1000,
            )
        # ``close`` shuts it down (``DeferredTelemetry`` registers that at exit).
        self.meter_provider = MeterProvider(
            resource=self.resource, metric_readers=[metric_reader], shutdown_on_exit=False
        )
        meter = self.meter_provider.get_meter(INSTRUMENTATION)
        self.counters: dict[str, Any] = {
            "khook.events.in": meter.create_counter(
                "khook.events.in", unit="{event}", description="Events normalised from deliveries"
            ),
            "khook.decisions": meter.create_counter(
                "khook.decisions", unit="{decision}", description="Pipeline decisions by kind"
            ),
            "khook.dispatches": meter.create_counter(
                "khook.dispatches", unit="{dispatch}", description="Dispatches by outcome"
            ),
            "khook.config.reloads": meter.create_counter(
                "khook.config.reloads", unit="{reload}", description="Live configuration reloads"
            ),
            "khook.redaction.masked": meter.create_counter(
                "khook.redaction.masked", unit="{value}", description="Values masked by redaction"
            ),
        }
        self.histograms: dict[str, Any] = {
            "khook.claim.duration": meter.create_histogram(
                "khook.claim.duration",
                unit="s",
                description="State store claim latency",
                explicit_bucket_boundaries_advisory=LATENCY_BOUNDARIES,
            ),
            "khook.dispatch.duration": meter.create_histogram(
                "khook.dispatch.duration",
                unit="s",
                description="Dispatch latency by outcome",
                explicit_bucket_boundaries_advisory=LATENCY_BOUNDARIES,
            ),
            "khook.backlog.size": meter.create_histogram(
                "khook.backlog.size",
                unit="{event}",
                description="Events a run carried from storm control's backlog",
            ),
        }

    def spans(self, records: Iterable[SpanRecord]) -> None:
        """Finished (sampled) spans to the processor, as the SDK's own would reach it."""
        for record in records:
            self.processor.on_end(
                ReadableSpan(
                    name=record.name,
                    context=_context(record.context),
                    parent=_context(record.parent) if record.parent is not None else None,
                    resource=self.resource,
                    attributes=dict(record.attributes) if record.attributes else {},
                    kind=_KINDS[record.kind],
                    start_time=record.start_ns,
                    end_time=record.end_ns,
                    instrumentation_scope=self.scope,
                )
            )

    def measure(self, measurements: Iterable[Measurement]) -> None:
        """Measurements into the instruments, each in the context of the span it was made in
        (the SDK's trace-based exemplars link a measurement to its span)."""
        for m in measurements:
            context = (
                trace.set_span_in_context(trace.NonRecordingSpan(_context(m.span)))
                if m.span is not None
                else None
            )
            if m.counter:
                self.counters[m.name].add(m.value, m.attributes, context=context)
            else:
                self.histograms[m.name].record(m.value, m.attributes, context=context)

    def close(self) -> None:
        self.processor.shutdown()
        self.meter_provider.shutdown()


def _context(context: SpanContext) -> trace.SpanContext:
    return trace.SpanContext(
        trace_id=context.trace_id,
        span_id=context.span_id,
        is_remote=context.remote,
        trace_flags=trace.TraceFlags(context.flags),
        trace_state=trace.TraceState(list(context.trace_state)) if context.trace_state else None,
    )
