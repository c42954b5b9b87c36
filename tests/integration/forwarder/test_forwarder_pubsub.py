"""The forwarder publishing into the real Pub/Sub emulator.

Checks the message contract byte for byte, recovery from an emulator that is stopped and
started again (nothing lost within the queue bound), the bound itself (oldest dropped and
counted), and SIGTERM on the real ``khook-forwarder`` process (flush within the deadline).
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from khook_core.forwarder.app import Forwarder
from khook_core.forwarder.config import ForwarderSettings
from tests.support.forwarder import REPO, ForwarderProcess, started_forwarders
from tests.support.kube_api import CORE_API, EVENTS_API, FakeKubeApi
from tests.support.pubsub import PubSubEmulator, Received, TcpGate

FAST = {
    "backoff_initial_seconds": 0.05,
    "backoff_max_seconds": 0.3,
    "watch_timeout_seconds": 5,
    "port": 0,
    "host": "127.0.0.1",
    "config_dir": REPO / "config",
    "cluster": "test-cluster",
    "batch_latency_seconds": 0.01,
    "publish_timeout_seconds": 2.0,
}


@pytest.fixture
def forwarder() -> Iterator[Callable[..., Forwarder]]:
    with started_forwarders() as start:
        yield lambda **settings: start(ForwarderSettings(**{**FAST, **settings}))


def uids(messages: list[Received]) -> set[str]:
    return {m.json()["metadata"]["uid"] for m in messages}


@pytest.mark.parametrize("api", [EVENTS_API, CORE_API])
def test_messages_carry_the_event_as_served_and_the_contract_attributes(
    api: str,
    pubsub_emulator: PubSubEmulator,
    kube_api_factory: Callable[..., FakeKubeApi],
    forwarder: Callable[..., Forwarder],
    wait_until: Callable[..., None],
):
    kube = kube_api_factory(api=api)
    topic = pubsub_emulator.create_topic()
    subscription = pubsub_emulator.create_subscription(topic)
    listed = kube.create("BackOff", namespace="shop", object_name="web-0")
    kube.create("Pulled", "image pulled", type_="Normal", namespace="shop")  # filtered
    fwd = forwarder(
        kube_api_url=kube.url,
        api=api,
        emulator_host=pubsub_emulator.host,
        topic=pubsub_emulator.topic_path(topic),
    )
    wait_until(fwd.ready)
    watched = kube.create(
        "Unhealthy",
        "Liveness probe failed: HTTP probe failed",
        namespace="payments",
        object_name="api-1",
    )

    got = pubsub_emulator.pull_until(subscription, 2)

    by_uid = {m.json()["metadata"]["uid"]: m for m in got}
    assert set(by_uid) == {listed["metadata"]["uid"], watched["metadata"]["uid"]}
    assert by_uid[watched["metadata"]["uid"]].json() == watched  # exactly as the API sent it
    assert by_uid[listed["metadata"]["uid"]].json() == listed
    assert by_uid[watched["metadata"]["uid"]].attributes == {
        "khook.source": "kubernetes",
        "khook.cluster": "test-cluster",
        "khook.api": api,
        "khook.namespace": "payments",
        "khook.reason": "Unhealthy",
        "khook.type": "Warning",
    }
    assert fwd.metrics.filtered["normal"] == 1


def test_an_emulator_restart_loses_nothing_within_the_queue_bound(
    private_pubsub_emulator: PubSubEmulator,
    tcp_gate: Callable[[int], TcpGate],
    kube_api: FakeKubeApi,
    forwarder: Callable[..., Forwarder],
    wait_until: Callable[..., None],
):
    emulator = private_pubsub_emulator
    gate = tcp_gate(emulator.port)
    topic = emulator.create_topic()
    subscription = emulator.create_subscription(topic)
    fwd = forwarder(
        kube_api_url=kube_api.url,
        emulator_host=gate.host,
        topic=emulator.topic_path(topic),
        queue_size=100,
    )
    wait_until(fwd.ready)
    before = {
        kube_api.create("BackOff", object_name=f"web-{i}")["metadata"]["uid"] for i in range(3)
    }
    assert uids(emulator.pull_until(subscription, 3)) == before

    gate.close()
    emulator.stop()
    during = {
        kube_api.create("BackOff", object_name=f"api-{i}")["metadata"]["uid"] for i in range(20)
    }
    wait_until(
        lambda: fwd.metrics.publish_errors >= 2 and len(fwd.publisher.queue) == 20,
        what="messages queued during the outage",
    )
    emulator.start()
    emulator.create_topic(topic)
    emulator.create_subscription(topic, subscription)
    gate.open()

    got = emulator.pull_until(subscription, 20, timeout=30)
    assert uids(got) == during
    assert not fwd.metrics.dropped


def test_past_the_queue_bound_the_oldest_are_dropped_and_counted(
    pubsub_emulator: PubSubEmulator,
    tcp_gate: Callable[[int], TcpGate],
    kube_api: FakeKubeApi,
    forwarder: Callable[..., Forwarder],
    wait_until: Callable[..., None],
):
    gate = tcp_gate(pubsub_emulator.port)
    topic = pubsub_emulator.create_topic()
    subscription = pubsub_emulator.create_subscription(topic)
    fwd = forwarder(
        kube_api_url=kube_api.url,
        emulator_host=gate.host,
        queue_size=5,
        batch_size=5,
        topic=pubsub_emulator.topic_path(topic),
    )
    wait_until(fwd.ready)
    gate.close()
    created = [
        kube_api.create("BackOff", object_name=f"web-{i}")["metadata"]["uid"] for i in range(12)
    ]
    # 7 dropped and 5 queued: no sender still holds a batch it could publish once the gate opens.
    wait_until(
        lambda: fwd.metrics.dropped["queue-full"] == 7 and len(fwd.publisher.queue) == 5,
        what="7 drops, 5 queued",
    )
    gate.open()

    got = pubsub_emulator.pull_until(subscription, 5, timeout=30)

    assert uids(got) == set(created[-5:])


@pytest.mark.parametrize(("reopen", "exit_code"), [(True, 0), (False, 1)])
def test_sigterm_flushes_the_queue_within_the_deadline(
    reopen: bool,
    exit_code: int,
    tmp_path: Path,
    pubsub_emulator: PubSubEmulator,
    tcp_gate: Callable[[int], TcpGate],
    kube_api: FakeKubeApi,
    wait_until: Callable[..., None],
):
    gate = tcp_gate(pubsub_emulator.port)
    topic = pubsub_emulator.create_topic()
    subscription = pubsub_emulator.create_subscription(topic)
    fwd = ForwarderProcess(
        tmp_path / "forwarder.log",
        {
            "KHOOK_FORWARDER_KUBE_API_URL": kube_api.url,
            "PUBSUB_EMULATOR_HOST": gate.host,
            "KHOOK_TOPIC": topic,
            "GOOGLE_CLOUD_PROJECT": pubsub_emulator.project,
            "KHOOK_CONFIG_DIR": str(REPO / "config"),
            "KHOOK_FORWARDER_FLUSH_SECONDS": "10" if reopen else "1",
            "KHOOK_FORWARDER_BACKOFF_MAX_SECONDS": "0.3",
        },
    )
    try:
        wait_until(fwd.ready, timeout=30, what="forwarder ready")
        gate.close()
        for i in range(4):
            kube_api.create("BackOff", object_name=f"web-{i}")
        wait_until(
            lambda: (
                fwd.metric("events_forwarded_total") == 4
                and fwd.metric("publish_errors_total") >= 1
            ),
            what="4 held back",
        )

        fwd.proc.send_signal(signal.SIGTERM)
        if reopen:
            wait_until(lambda: fwd.metric("publish_errors_total") >= 2, what="a retry")
            gate.open()
        assert fwd.proc.wait(timeout=20) == exit_code
    finally:
        fwd.stop()
    records = fwd.records()
    assert records
    assert all("severity" in r for r in records)
    assert any("SIGTERM" in r["message"] for r in records)
    if reopen:
        assert len(pubsub_emulator.pull_until(subscription, 4)) == 4
    else:
        assert any(
            r["severity"] == "ERROR" and "could not be published" in r["message"] for r in records
        )
