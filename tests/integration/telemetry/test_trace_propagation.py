"""One trace an event, across real processes: the forwarder's publish → the Pub/Sub emulator
→ a push to functions-framework serving ``functions/kubernetes`` → the a2a-sdk test agent.

The forwarder runs in this process with its spans in memory; the function runs with
``KHOOK_TELEMETRY=console``, so its spans are in its log; the agent records the headers it
received. All three must name the same trace id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from khook_core import telemetry
from khook_core.forwarder.app import Forwarder
from khook_core.forwarder.config import ForwarderSettings
from khook_core.settings import TelemetrySettings
from tests.support.a2a_agent import TestAgent
from tests.support.configdir import make_config, restart_hook
from tests.support.functions import FunctionServer
from tests.support.kube_api import FakeKubeApi
from tests.support.pubsub import PubSubEmulator

FUNCTION_SPANS = {"receive kubernetes", "decode", "normalize", "claim", "dispatch"}
SPAN_START = re.compile(r'^\{\s*\n\s*"name":', re.MULTILINE)


def printed_spans(log: str) -> list[dict[str, Any]]:
    """The spans the console exporter printed (indented JSON objects among the log lines)."""
    decoder = json.JSONDecoder()
    return [decoder.raw_decode(log, match.start())[0] for match in SPAN_START.finditer(log)]


def test_one_trace_id_runs_from_the_forwarders_publish_to_the_agents_headers(
    tmp_path: Path,
    pubsub_emulator: PubSubEmulator,
    kube_api: FakeKubeApi,
    a2a_agent: TestAgent,
    function_server: Callable[..., FunctionServer],
    wait_until: Callable[..., None],
):
    config = make_config(tmp_path, restart_hook())
    function = function_server(
        "kubernetes",
        env={
            "KHOOK_CONFIG_DIR": str(config),
            "KHOOK_STATE": f"sqlite:{tmp_path / 'state.db'}",
            "KAGENT_API_URL": a2a_agent.base_url,
            "KHOOK_TELEMETRY": "console",
        },
    )
    topic = pubsub_emulator.create_topic()
    pubsub_emulator.create_subscription(
        topic, push_endpoint=f"{function.url}/{pubsub_emulator.topic_path(topic)}"
    )
    spans = InMemorySpanExporter()
    forwarder = Forwarder(
        ForwarderSettings(
            kube_api_url=kube_api.url,
            emulator_host=pubsub_emulator.host,
            topic=pubsub_emulator.topic_path(topic),
            config_dir=config,
            cluster="test-cluster",
            host="127.0.0.1",
            port=0,
            batch_latency_seconds=0.01,
        ),
        telemetry=telemetry.build(
            TelemetrySettings(mode="console"),
            function="forwarder",
            span_exporter=spans,
            metric_reader=InMemoryMetricReader(),
        ),
    )
    forwarder.start()
    try:
        wait_until(forwarder.ready, what="forwarder ready")
        kube_api.create("BackOff", namespace="shop", object_name="web-0")
        wait_until(lambda: a2a_agent.rpc_requests(), timeout=60, what="the agent call")
    finally:
        forwarder.stop(flush_seconds=1)

    [published] = [s for s in spans.get_finished_spans() if s.name.startswith("publish ")]
    trace_id = format(published.context.trace_id, "032x")
    [call] = a2a_agent.rpc_requests()
    assert call.headers["traceparent"].split("-")[1] == trace_id
    wait_until(
        lambda: {s["name"] for s in printed_spans(function.logs())} >= FUNCTION_SPANS,
        what="the function's spans",
    )
    function_spans = {
        s["name"]: s for s in printed_spans(function.logs()) if s["name"] in FUNCTION_SPANS
    }
    assert {s["context"]["trace_id"] for s in function_spans.values()} == {f"0x{trace_id}"}
    received = function_spans["receive kubernetes"]
    assert received["parent_id"] == f"0x{format(published.context.span_id, '016x')}"
    assert received["kind"] == "SpanKind.CONSUMER"
    dispatch_span = function_spans["dispatch"]["context"]["span_id"]
    assert call.headers["traceparent"].split("-")[2] == dispatch_span.removeprefix("0x")
