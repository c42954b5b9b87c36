"""The kafka and cdc functions behind a real Pub/Sub emulator push subscription.

The function is the functions-framework app served over HTTP in a thread (so the test can look
at the process-wide runtime's dry-run dispatcher); the emulator pushes to it exactly as Pub/Sub
pushes to Cloud Run, and redelivers whatever is not answered 2xx.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from werkzeug.serving import BaseWSGIServer, make_server

from khook_core.runtime import get_runtime
from tests.support.pubsub import PubSubEmulator
from tests.support.sources import sample, sample_bytes

QUIET_S = 1.0
"""How long nothing more may arrive after the expected dispatches (the push retry is ~1 s)."""


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Serve ``functions/<name>`` on 127.0.0.1; returns the base URL."""
    import functions_framework

    from tests.support.paths import REPO

    servers: list[tuple[BaseWSGIServer, threading.Thread]] = []

    def start(name: str) -> str:
        monkeypatch.setenv("FUNCTION_TARGET", "handle")
        monkeypatch.setenv("FUNCTION_SIGNATURE_TYPE", "cloudevent")
        source = str(REPO / "functions" / name / "main.py")
        app = functions_framework.create_app("handle", source)  # type: ignore[no-untyped-call]
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    try:
        yield start
    finally:
        for server, thread in servers:
            server.shutdown()
            thread.join(5)


def dispatched() -> list[Any]:
    return list(get_runtime().dispatcher.requests)  # type: ignore[attr-defined]


def wait_for(count: int, wait_until: Callable[..., None]) -> list[Any]:
    wait_until(lambda: len(dispatched()) >= count, timeout=30, what=f"{count} dispatches")
    time.sleep(QUIET_S)
    return dispatched()


def test_kafka_records_pushed_by_the_emulator(
    pubsub_emulator: PubSubEmulator,
    function_env: Callable[..., Any],
    serve: Callable[[str], str],
    wait_until: Callable[..., None],
) -> None:
    function_env()
    url = serve("kafka")
    topic = pubsub_emulator.create_topic()
    pubsub_emulator.create_subscription(
        topic, push_endpoint=f"{url}/{pubsub_emulator.topic_path(topic)}"
    )
    lag = sample_bytes("kafka", "consumer-lag.json")
    meta = {"kafka.topic": "ops.lag", "kafka.partition": "0", "kafka.timestamp": "1767609071000"}
    pubsub_emulator.publish(topic, lag, {**meta, "kafka.offset": "1", "key": "orders"})
    pubsub_emulator.publish(topic, lag, {**meta, "kafka.offset": "2", "key": "orders"})
    pubsub_emulator.publish(
        topic, sample_bytes("kafka", "partition-offline.json"), {**meta, "kafka.offset": "3"}
    )
    pubsub_emulator.publish(topic, lag, {"key": "no-metadata"})  # invalid: acked, not retried
    requests = wait_for(2, wait_until)
    assert sorted(r.event.type for r in requests) == ["consumer-lag", "partition-offline"]
    assert {r.event.raw_ref for r in requests} <= {
        "kafka:ops.lag/0@1",
        "kafka:ops.lag/0@2",
        "kafka:ops.lag/0@3",
    }


def test_cdc_changes_pushed_by_the_emulator(
    pubsub_emulator: PubSubEmulator,
    function_env: Callable[..., Any],
    serve: Callable[[str], str],
    wait_until: Callable[..., None],
) -> None:
    function_env()
    url = serve("cdc")
    topic = pubsub_emulator.create_topic()
    pubsub_emulator.create_subscription(
        topic, push_endpoint=f"{url}/{pubsub_emulator.topic_path(topic)}"
    )
    change = json.dumps(sample("cdc", "debezium-update-with-schema.json")).encode()
    pubsub_emulator.publish(topic, change)
    pubsub_emulator.publish(topic, change)  # Debezium Server re-sends after a restart
    # A tombstone: no value (Pub/Sub needs data or an attribute, so the key rides along).
    pubsub_emulator.publish(topic, b"", {"key": '{"id": 42}'})
    pubsub_emulator.publish(topic, sample_bytes("cdc", "debezium-snapshot-read.json"))
    [request] = wait_for(1, wait_until)
    assert request.event.occurrence == "shopdb:lsn=90212336:u"
    assert request.hook == "data/jobs"
