"""The in-process bus: Pub/Sub's REST publish API and push delivery rules, without the emulator."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from khook_local.bus import MemoryBus, Subscription
from khook_local.emulator import RestEndpoint

MIN_BACKOFF, MAX_BACKOFF = "0.05s", "0.2s"


class Endpoint:
    """A push endpoint answering a scripted status per request and recording every body."""

    def __init__(self, statuses: Callable[[int], int]) -> None:
        self.statuses = statuses
        self.bodies: list[dict[str, Any]] = []
        self.times: list[float] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.bodies.append(body)
                    outer.times.append(time.monotonic())
                    status = outer.statuses(len(outer.bodies))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/projects/p/topics/t"

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while len(self.bodies) < count:
            assert time.monotonic() < end, f"{len(self.bodies)} of {count} deliveries"
            time.sleep(0.01)


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[MemoryBus]:
    bus = MemoryBus(tmp_path / "dead-letters.jsonl").start()
    yield bus
    bus.stop()


@pytest.fixture
def endpoints() -> Iterator[Callable[[Callable[[int], int]], Endpoint]]:
    made: list[Endpoint] = []

    def make(statuses: Callable[[int], int]) -> Endpoint:
        made.append(Endpoint(statuses))
        return made[-1]

    yield make
    for endpoint in made:
        endpoint.server.shutdown()
        endpoint.server.server_close()


def subscribe(bus: MemoryBus, endpoint: Endpoint) -> RestEndpoint:
    api = RestEndpoint(bus.host, "demo-khook")
    api.create_topic("khook-kafka")
    api.create_topic("khook-kafka-dead-letter")
    api.create_subscription(
        "khook-kafka",
        "khook-kafka-push",
        push_endpoint=endpoint.url,
        dead_letter_topic="khook-kafka-dead-letter",
        max_delivery_attempts=5,
        min_backoff=MIN_BACKOFF,
        max_backoff=MAX_BACKOFF,
    )
    return api


def test_a_failed_push_is_redelivered_with_backoff_until_acknowledged(bus, endpoints):
    endpoint = endpoints(lambda n: 500 if n <= 2 else 200)
    api = subscribe(bus, endpoint)

    message_id = api.publish("khook-kafka", b'{"lag": 5000}', {"kafka.topic": "lag"})

    endpoint.wait_for(3)
    time.sleep(0.3)  # longer than the largest backoff: a fourth delivery would have come
    assert [b["deliveryAttempt"] for b in endpoint.bodies] == [1, 2, 3]
    first = endpoint.bodies[0]
    assert first["subscription"] == "projects/demo-khook/subscriptions/khook-kafka-push"
    assert first["message"]["messageId"] == message_id
    assert base64.b64decode(first["message"]["data"]) == b'{"lag": 5000}'
    assert first["message"]["attributes"] == {"kafka.topic": "lag"}
    assert all(b["message"] == first["message"] for b in endpoint.bodies)
    gaps = [b - a for a, b in zip(endpoint.times, endpoint.times[1:], strict=False)]
    assert gaps[0] >= 0.05
    assert gaps[1] >= 0.1  # doubled
    assert not bus.dead_letter_path.exists()


def test_a_message_that_keeps_failing_is_dead_lettered_after_max_attempts(bus, endpoints):
    endpoint = endpoints(lambda n: 500)
    seen: list[dict[str, Any]] = []
    bus.on_dead_letter = seen.append
    api = subscribe(bus, endpoint)

    message_id = api.publish("khook-kafka", b"poison", {"k": "v"})

    endpoint.wait_for(5)
    end = time.monotonic() + 5
    while not seen and time.monotonic() < end:
        time.sleep(0.01)
    time.sleep(0.3)
    assert len(endpoint.bodies) == 5
    [record] = [json.loads(line) for line in bus.dead_letter_path.read_text().splitlines()]
    assert seen == [record]
    assert record["messageId"] == message_id
    assert record["deliveryAttempts"] == 5
    assert record["lastError"] == "HTTP 500"
    assert record["topic"] == "projects/demo-khook/topics/khook-kafka-dead-letter"
    assert base64.b64decode(record["data"]) == b"poison"
    assert record["attributes"]["k"] == "v"
    assert record["attributes"]["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    assert record["attributes"]["CloudPubSubDeadLetterSourceSubscription"] == "khook-kafka-push"


def test_an_unreachable_endpoint_counts_as_a_failed_delivery(bus, tmp_path):
    api = RestEndpoint(bus.host)
    api.create_topic("khook-cdc")
    api.create_topic("khook-cdc-dead-letter")
    api.create_subscription(
        "khook-cdc",
        "khook-cdc-push",
        push_endpoint="http://127.0.0.1:9/x",
        dead_letter_topic="khook-cdc-dead-letter",
        min_backoff=MIN_BACKOFF,
        max_backoff=MAX_BACKOFF,
    )
    api.publish("khook-cdc", b"{}")
    end = time.monotonic() + 10
    while not bus.dead_letter_path.exists() and time.monotonic() < end:
        time.sleep(0.02)
    [record] = [json.loads(line) for line in bus.dead_letter_path.read_text().splitlines()]
    assert record["deliveryAttempts"] == 5
    assert "ConnectionRefusedError" in record["lastError"] or "URLError" in record["lastError"]


def test_publish_is_refused_like_pubsub_refuses_it(bus):
    api = RestEndpoint(bus.host)
    with pytest.raises(urllib.error.HTTPError) as missing:
        api.publish("khook-nowhere", b"x")
    with missing.value as error:
        assert error.code == 404
        assert json.loads(error.read())["error"]["status"] == "NOT_FOUND"

    api.create_topic("khook-kafka")
    with pytest.raises(urllib.error.HTTPError) as bad:
        api._call(
            "POST",
            api.topic_path("khook-kafka") + ":publish",
            {"messages": [{"data": "not base64!"}]},
        )
    assert bad.value.code == 400
    bad.value.close()
    with pytest.raises(urllib.error.HTTPError) as empty:
        api._call("POST", api.topic_path("khook-kafka") + ":publish", {"messages": [{}]})
    assert empty.value.code == 400
    empty.value.close()
    with pytest.raises(urllib.error.HTTPError) as name:
        api.create_topic("t")
    assert name.value.code == 400
    name.value.close()
    with pytest.raises(urllib.error.HTTPError) as pull:
        api.create_subscription("khook-kafka", "pull-sub")
    assert pull.value.code == 400
    pull.value.close()


def test_a_message_without_subscriptions_is_accepted_and_goes_nowhere(bus):
    api = RestEndpoint(bus.host)
    api.create_topic("khook-alone")
    assert api.publish("khook-alone", b"x").isdigit()


def test_backoff_doubles_from_the_minimum_up_to_the_maximum():
    sub = Subscription(
        "projects/p/subscriptions/s",
        "projects/p/topics/t",
        "http://x/",
        min_backoff_s=1.0,
        max_backoff_s=10.0,
    )
    assert [sub.backoff(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 10.0]
