"""Where ``console`` and ``gcp`` send spans and metrics.

The Google Cloud exporters come with the ``cloud`` extra and are imported only for ``gcp``;
their absence fails the cold start with the install command, never a silent no-op.
"""

from __future__ import annotations

import io
import sys
from typing import IO, cast

from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, MetricExporter
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)

from khook_core.errors import ConfigError, Problem
from khook_core.telemetry import CLOUD_EXTRA_HINT


class CurrentStdout(io.TextIOBase):
    """Whatever ``sys.stdout`` is when a line is written: the console exporters' default is
    the stream of their module's import, which a server or a test may since have replaced."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


CURRENT_STDOUT = cast("IO[str]", CurrentStdout())  # a text stream, as the exporters ask


def span_processor(mode: str) -> SpanProcessor:
    """``console``: each span printed as it ends (one machine, a look); ``gcp``: batched to
    Cloud Trace in the background."""
    if mode == "gcp":
        try:
            from opentelemetry.exporter.cloud_trace import CloudTraceSpanExporter
        except ImportError as exc:
            raise _missing("opentelemetry-exporter-gcp-trace") from exc
        return BatchSpanProcessor(CloudTraceSpanExporter())  # type: ignore[no-untyped-call]
    return SimpleSpanProcessor(ConsoleSpanExporter(out=CURRENT_STDOUT))


def metric_exporter(mode: str) -> MetricExporter:
    if mode == "gcp":
        try:
            from opentelemetry.exporter.cloud_monitoring import CloudMonitoringMetricsExporter
        except ImportError as exc:
            raise _missing("opentelemetry-exporter-gcp-monitoring") from exc
        exporter: MetricExporter = CloudMonitoringMetricsExporter()
        return exporter
    return ConsoleMetricExporter(out=CURRENT_STDOUT)


def _missing(distribution: str) -> ConfigError:
    return ConfigError(
        [
            Problem(
                "environment",
                None,
                f"KHOOK_TELEMETRY=gcp: {distribution} is not installed; {CLOUD_EXTRA_HINT}",
            )
        ]
    )
