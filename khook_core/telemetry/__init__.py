"""Traces and metrics of khook itself, behind a no-op default.

The pipeline, the transports and the forwarder call a ``Telemetry`` object they are given
(``runtime.telemetry``). With ``KHOOK_TELEMETRY=off`` it is ``NOOP``: every call returns at once
and no OpenTelemetry module is imported, so neither the cold start nor the hot path pays for a
feature that is off. ``build`` imports ``khook_core.telemetry.otel`` (the SDK) only for
``console`` or ``gcp``.

One trace a event: the forwarder's publish span puts a W3C ``traceparent`` in the Pub/Sub
message attributes; the function's receive span continues it, with ``decode``, ``normalize``,
``claim`` and ``dispatch`` spans under it, and the agent call carries the dispatch span's
``traceparent`` header (``DispatchRequest.trace_headers``).

Metrics (attributes ``source`` and ``function`` on each; names as Cloud Monitoring shows them
under ``workload.googleapis.com/``): ``khook.events.in``, ``khook.decisions`` (``decision``),
``khook.claim.duration`` (``result``), ``khook.dispatch.duration`` and ``khook.dispatches``
(``outcome``), ``khook.backlog.size``, ``khook.config.reloads`` (``outcome``),
``khook.redaction.masked`` (``kind``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from khook_core.settings import TelemetrySettings

__all__ = ["NOOP", "TRACEPARENT", "SpanKind", "Telemetry", "build"]

TRACEPARENT: Final = "traceparent"
"""The W3C Trace Context header, and the Pub/Sub attribute of the same name."""

CLOUD_EXTRA_HINT: Final = "pip install 'khook-serverless[cloud]' (the Google Cloud exporters)"

SpanKind = Literal["internal", "producer", "consumer", "server", "client"]

_NULL: Final = contextlib.nullcontext()
"""One shared context manager for every no-op span: entering it allocates nothing."""


class Telemetry:
    """The no-op telemetry, and the interface ``otel.OtelTelemetry`` implements.

    Every method takes plain values (strings, seconds), so callers never import OpenTelemetry.
    """

    enabled: bool = False

    def span(
        self,
        name: str,
        *,
        parent: Mapping[str, str] | None = None,
        kind: SpanKind = "internal",
        start_ns: int | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> contextlib.AbstractContextManager[None]:
        """A span around the ``with`` block, current inside it.

        Args:
            parent: a carrier (message attributes, request headers) whose ``traceparent``
                the span continues; None: the current span's child (or a new trace).
            start_ns: when the span began (``time.time_ns()``), if before the ``with``.
        """
        return _NULL

    def record_span(self, name: str, start_ns: int, end_ns: int) -> None:
        """A finished child span of the current one, timed by the caller (``decode``, which
        runs before the function knows its runtime)."""

    def trace_headers(self) -> dict[str, str]:
        """The current span's ``traceparent`` (and ``tracestate``) to send on; empty when off."""
        return {}

    # -- metrics ------------------------------------------------------------------------------

    def event_in(self, source: str) -> None:
        """One event normalised from a delivery of ``source``."""

    def decision(self, source: str, decision: str) -> None:
        """One decision of the pipeline (a ``DecisionKind`` value)."""

    def claim(self, source: str, seconds: float, result: str) -> None:
        """One claim of the state store and how it answered."""

    def dispatch(self, source: str, seconds: float, outcome: str) -> None:
        """One dispatch to an agent or webhook; ``outcome``: ``ok``, ``transient``,
        ``uncertain`` or ``rejected``."""

    def backlog(self, source: str, size: int) -> None:
        """The events a run carried from storm control's backlog."""

    def reload(self, outcome: str) -> None:
        """A live configuration ``loaded`` or ``refused``."""

    def masked(self, source: str, kind: str, count: int) -> None:
        """Values of ``kind`` the redaction step masked in one event."""

    def close(self) -> None:
        """Flush and stop the exporters."""


NOOP: Final = Telemetry()


def build(
    settings: TelemetrySettings,
    *,
    function: str,
    span_exporter: Any = None,
    metric_reader: Any = None,
    load_now: bool | None = None,
) -> Telemetry:
    """The telemetry ``settings`` ask for: ``NOOP`` when off (nothing imported).

    Args:
        function: this process (a function's name, ``forwarder``): the ``function`` metric
            attribute and the ``service.name`` of its spans.
        span_exporter, metric_reader: replace the exporters of the mode (tests read what
            is exported in memory).
        load_now: load the SDK before returning; by default only when given exporters (their
            reader reads now); otherwise it loads after the first answer
            (``deferred.DeferredTelemetry``).

    Raises:
        ConfigError: telemetry on without the OpenTelemetry SDK installed, or ``gcp`` without
            the Google Cloud exporters.
    """
    if settings.mode == "off" and span_exporter is None and metric_reader is None:
        return NOOP
    _require_sdk(settings.mode)
    from khook_core.telemetry.deferred import DeferredTelemetry

    def sink(instance: str) -> Any:
        from khook_core.telemetry import otel

        return otel.Exporting(
            settings,
            function=function,
            instance=instance,
            span_exporter=span_exporter,
            metric_reader=metric_reader,
        )

    tracing = DeferredTelemetry(settings, function=function, sink=sink)
    if load_now is None:  # a caller's own reader reads now: the SDK must stand behind it
        load_now = span_exporter is not None or metric_reader is not None
    if load_now:
        tracing.load()
    return tracing


def _require_sdk(mode: str) -> None:
    """Fail the cold start, not the first export, when the SDK or the mode's exporters are not
    installed: their modules are found without importing them."""
    from importlib.util import find_spec

    from khook_core.errors import ConfigError, Problem

    def found(module: str) -> bool:
        try:
            return find_spec(module) is not None
        except (ImportError, ValueError):
            return False

    for module in ("khook_core.telemetry.otel", "opentelemetry.sdk"):
        if not found(module):
            raise ConfigError(
                [
                    Problem(
                        "environment",
                        None,
                        f"KHOOK_TELEMETRY={mode}: {module.removeprefix('khook_core.telemetry.')} "
                        "is not installed; pip install 'khook-serverless[telemetry]' "
                        "('[cloud]' for gcp)",
                    )
                ]
            )
    if mode == "gcp":
        for module, distribution in (
            ("opentelemetry.exporter.cloud_trace", "opentelemetry-exporter-gcp-trace"),
            ("opentelemetry.exporter.cloud_monitoring", "opentelemetry-exporter-gcp-monitoring"),
        ):
            if not found(module):
                raise ConfigError(
                    [
                        Problem(
                            "environment",
                            None,
                            f"KHOOK_TELEMETRY=gcp: {distribution} is not installed; "
                            f"{CLOUD_EXTRA_HINT}",
                        )
                    ]
                )


@contextlib.contextmanager
def closing(telemetry: Telemetry) -> Iterator[Telemetry]:
    """``telemetry``, closed (flushed) on the way out."""
    try:
        yield telemetry
    finally:
        telemetry.close()
