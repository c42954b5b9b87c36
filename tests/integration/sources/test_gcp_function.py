"""The gcp function with the a2a-sdk test agent: malformed messages are acknowledged, and
incidents and builds pushed by the Pub/Sub emulator reach the agent once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from khook_core.runtime import get_runtime
from tests.support.a2a_agent import TestAgent
from tests.support.gcp import BUILD_ATTRS, BUILD_FAILED, BUILD_OK, INCIDENT_OPEN
from tests.support.pubsub import PubSubEmulator
from tests.support.sources import push_body, sample_bytes

HOOKS = """\
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {name: gcp, namespace: ops}
spec:
  sources: [gcp]
  eventConfigurations:
  - eventType: monitoring-incident
    agentRef: {name: k8s-agent, namespace: kagent}
    prompt: "Incident on {{.Namespace}}/{{.ResourceName}}: {{.Message}}"
  - eventType: build-failed
    agentRef: {name: k8s-agent, namespace: kagent}
    prompt: "Build {{.ResourceName}} failed: {{.Message}}"
"""
TOPIC = "/projects/p1/topics/khook-gcp"
QUIET_S = 1.0


@pytest.fixture
def agent_env(function_env: Callable[..., Any], a2a_agent: TestAgent) -> Iterator[None]:
    function_env(hooks=HOOKS, KHOOK_DISPATCH="auto", KAGENT_API_URL=a2a_agent.base_url)
    yield
    get_runtime().close()


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("not json", b"<html>oops</html>"),
        ("not utf-8", b"\xff\xfe"),
        ("unknown shape", b'{"hello": 1}'),
        ("old schema", sample_bytes("gcp", INCIDENT_OPEN).replace(b'"1.2"', b'"0.9"')),
    ],
)
def test_a_malformed_message_is_logged_and_acknowledged(
    agent_env: None,
    cloudevent_client: Callable[[str], Any],
    a2a_agent: TestAgent,
    capfd: pytest.CaptureFixture[str],
    name: str,
    data: bytes,
) -> None:
    reply = cloudevent_client("gcp").post(TOPIC, json=push_body(data))

    assert reply.status_code == 200  # acknowledged: a redelivery would fail the same way
    assert a2a_agent.runs == []
    out, err = capfd.readouterr()
    assert "acknowledging invalid gcp message" in out + err


@pytest.fixture
def serve_gcp(monkeypatch: pytest.MonkeyPatch, agent_env: None) -> Iterator[str]:
    """The gcp function served on 127.0.0.1 for the emulator's push subscriptions."""
    import functions_framework

    from tests.support.paths import REPO

    monkeypatch.setenv("FUNCTION_TARGET", "handle")
    monkeypatch.setenv("FUNCTION_SIGNATURE_TYPE", "cloudevent")
    app = functions_framework.create_app(  # type: ignore[no-untyped-call]
        "handle", str(REPO / "functions" / "gcp" / "main.py")
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


def test_incidents_and_builds_pushed_by_the_emulator_reach_the_agent(
    pubsub_emulator: PubSubEmulator,
    serve_gcp: str,
    a2a_agent: TestAgent,
    wait_until: Callable[..., None],
) -> None:
    channel = pubsub_emulator.create_topic()  # the notification channel's topic
    builds = pubsub_emulator.create_topic()  # stands in for cloud-builds
    for topic in (channel, builds):
        pubsub_emulator.create_subscription(
            topic, push_endpoint=f"{serve_gcp}/{pubsub_emulator.topic_path(topic)}"
        )
    opened = sample_bytes("gcp", INCIDENT_OPEN)
    pubsub_emulator.publish(channel, opened)
    pubsub_emulator.publish(channel, opened)  # a re-notification of the same open incident
    pubsub_emulator.publish(
        builds, sample_bytes("gcp", BUILD_OK), BUILD_ATTRS | {"status": "SUCCESS"}
    )
    pubsub_emulator.publish(builds, sample_bytes("gcp", BUILD_FAILED), BUILD_ATTRS)
    pubsub_emulator.publish(builds, b'{"status": 1}', {"buildId": "x"})  # acked, not retried

    wait_until(lambda: len(a2a_agent.runs) >= 2, timeout=30, what="two agent runs")
    time.sleep(QUIET_S)  # room for a wrong third run (the emulator's push retry is ~1 s)
    texts = sorted(run.text for run in a2a_agent.runs)
    assert len(texts) == 2
    assert texts[0].startswith('Build "checkout-main" failed')
    assert texts[1].startswith('Incident on "shop"/"checkout-7d9f6c5b8-x2k4q"')
