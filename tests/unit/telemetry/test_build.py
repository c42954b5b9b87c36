"""Which telemetry a process gets from its settings, and the error when the SDK is missing."""

from __future__ import annotations

import sys

import pytest

from khook_core import telemetry
from khook_core.errors import ConfigError
from khook_core.settings import Settings, TelemetrySettings


def test_off_is_the_default_and_builds_the_no_op():
    settings = Settings.from_env({})
    assert settings.telemetry.mode == "off"
    assert telemetry.build(settings.telemetry, function="kubernetes") is telemetry.NOOP


def test_on_without_the_sdk_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delattr(telemetry, "otel", raising=False)
    monkeypatch.setitem(sys.modules, "khook_core.telemetry.otel", None)  # import fails

    with pytest.raises(
        ConfigError, match=r"KHOOK_TELEMETRY=console: .*khook-serverless\[telemetry\]"
    ):
        telemetry.build(TelemetrySettings(mode="console"), function="kubernetes")


def test_a_trace_header_is_the_current_span_and_none_outside_one():
    tracing = telemetry.build(
        TelemetrySettings(mode="console"),
        function="f",
        span_exporter=_Drop(),
        metric_reader=_reader(),
    )
    try:
        assert tracing.trace_headers() == {}
        with tracing.span("dispatch"):
            [header] = tracing.trace_headers().values()
        version, trace_id, span_id, flags = header.split("-")
        assert (version, len(trace_id), len(span_id)) == ("00", 32, 16)
        assert int(flags, 16) & 1  # sampled
    finally:
        tracing.close()


class _Drop:
    def export(self, spans: object) -> object:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _reader() -> object:
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    return InMemoryMetricReader()
