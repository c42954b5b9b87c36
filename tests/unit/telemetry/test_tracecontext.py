"""khook's own W3C Trace Context reading (used before the SDK is loaded) agrees with the
OpenTelemetry propagator on every header: the same parent or the same refusal."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from khook_core.telemetry import tracecontext as tc

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def sdk(carrier: dict[str, str]) -> tuple[object, ...] | None:
    context = TraceContextTextMapPropagator().extract(carrier)
    span = trace.get_current_span(context).get_span_context()
    if not span.is_valid:
        return None
    return (span.trace_id, span.span_id, int(span.trace_flags), tuple(span.trace_state.items()))


def ours(carrier: dict[str, str]) -> tuple[object, ...] | None:
    span = tc.extract(carrier)
    if span is None:
        return None
    return (span.trace_id, span.span_id, span.flags, span.trace_state)


@pytest.mark.parametrize(
    "header",
    [
        VALID,
        VALID[:-2] + "00",
        VALID[:-2] + "03",
        "  \t" + VALID + " \t",
        VALID + "\n",
        VALID + "-extra",
        "01" + VALID[2:] + "-future",
        "ff" + VALID[2:],
        VALID.upper(),
        "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01",
        VALID[:-1],
        VALID.replace("-", "_"),
        VALID + " x",
        "",
        "x" * 600,
    ],
)
def test_a_traceparent_is_read_as_the_sdk_reads_it(header: str):
    assert ours({"traceparent": header}) == sdk({"traceparent": header})


@pytest.mark.parametrize(
    "state",
    [
        "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
        " congo=t61rcWkgMzE , ,rojo=00f067aa0ba902b7",
        "a=1,a=2",
        "Upper=1",
        "vendor@tenant=x",
        "k=v=w",
        ",".join(f"k{i}=v" for i in range(33)),
    ],
)
def test_a_tracestate_is_kept_as_the_sdk_keeps_it(state: str):
    carrier = {"traceparent": VALID, "tracestate": state}
    assert ours(carrier) == sdk(carrier)
    span = tc.extract(carrier)
    assert span is not None
    expected = TraceContextTextMapPropagator()
    injected: dict[str, str] = {}
    parent = trace.NonRecordingSpan(
        trace.get_current_span(expected.extract(carrier)).get_span_context()
    )
    expected.inject(injected, context=trace.set_span_in_context(parent))
    assert span.headers() == injected


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="0123456789abcdefABF- \t\nx", min_size=50, max_size=70),
)
def test_any_near_miss_is_read_as_the_sdk_reads_it(header: str):
    assert ours({"traceparent": header}) == sdk({"traceparent": header})


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=" \t\n-x0", max_size=3),
    st.sampled_from([VALID, "01" + VALID[2:], VALID[:-2] + "00"]),
    st.text(alphabet=" \t\n-x0", max_size=4),
)
def test_a_valid_header_with_anything_around_it_is_read_as_the_sdk_reads_it(
    before: str, header: str, after: str
):
    carrier = {"traceparent": before + header + after}
    assert ours(carrier) == sdk(carrier)
