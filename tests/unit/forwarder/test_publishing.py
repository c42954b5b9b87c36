"""The bounded queue and the sender: outages delay messages, only the bound loses them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import pytest

from khook_core.event import Workload
from khook_core.forwarder.backoff import Backoff
from khook_core.forwarder.filtering import Outbound, OwnedObject, attach_workloads
from khook_core.forwarder.metrics import ForwarderMetrics
from khook_core.forwarder.publishing import BoundedQueue, Publisher
from khook_core.forwarder.pubsub_rest import _chunks
from tests.support.forwarder import TOPIC, RecordingClient


def message(i: int) -> Outbound:
    attributes = {"khook.source": "kubernetes", "khook.reason": "BackOff"}
    return Outbound(f"event-{i}".encode(), attributes)


def make_publisher(
    client: RecordingClient,
    metrics: ForwarderMetrics,
    queue_size: int = 100,
    batch_size: int = 10,
    prepare: Callable[[Sequence[Outbound]], None] | None = None,
) -> Publisher:
    return Publisher(
        client=client,
        topic=TOPIC,
        metrics=metrics,
        queue_size=queue_size,
        batch_size=batch_size,
        timeout=1.0,
        backoff=Backoff(0.01, 0.05),
        prepare=prepare,
    )


def eventually(predicate: Any, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.005)


def test_the_queue_drops_the_oldest_past_its_bound_and_says_how_many():
    dropped: list[int] = []
    queue = BoundedQueue(3, dropped.append)

    for i in range(5):
        queue.put(message(i))

    assert [m.data for m in queue.take(10, timeout=0)] == [b"event-2", b"event-3", b"event-4"]
    assert dropped == [1, 1]


def test_a_failed_batch_returns_to_the_front_in_order():
    queue = BoundedQueue(10, lambda n: None)
    for i in range(4):
        queue.put(message(i))
    batch = queue.take(2, timeout=0)

    queue.requeue(batch)

    assert [m.data for m in queue.take(10, timeout=0)] == [
        b"event-0",
        b"event-1",
        b"event-2",
        b"event-3",
    ]


def test_batches_requeued_out_of_order_still_lose_only_the_oldest():
    # Two senders: one holds an older batch while another takes newer messages, and the
    # failures come back in the other order. The queue keeps the newest five, whichever
    # batch they were in.
    dropped: list[int] = []
    queue = BoundedQueue(5, dropped.append)
    for i in range(5):
        queue.put(message(i))
    older = queue.take(2, timeout=0)  # 0, 1
    for i in (5, 6):
        queue.put(message(i))
    newer = queue.take(5, timeout=0)  # 2..6
    for i in (7, 8, 9):
        queue.put(message(i))

    queue.requeue(older)
    queue.requeue(newer)

    assert [m.data for m in queue.take(10, timeout=0)] == [
        b"event-5",
        b"event-6",
        b"event-7",
        b"event-8",
        b"event-9",
    ]
    assert sum(dropped) == 5


def test_messages_are_published_with_their_attributes():
    client, metrics = RecordingClient(), ForwarderMetrics()
    publisher = make_publisher(client, metrics)
    publisher.start()

    for i in range(25):
        publisher.submit(message(i))
    eventually(lambda: len(client.accepted) == 25)

    assert client.accepted[0] == (
        b"event-0",
        {"khook.source": "kubernetes", "khook.reason": "BackOff"},
    )
    assert publisher.stop(1.0)
    assert metrics.published == 25
    assert client.stopped


def test_an_outage_delays_messages_and_loses_none_within_the_bound():
    client, metrics = RecordingClient(), ForwarderMetrics()
    client.up.clear()
    publisher = make_publisher(client, metrics, queue_size=50)
    publisher.start()

    for i in range(40):
        publisher.submit(message(i))
    eventually(lambda: metrics.publish_errors >= 3)
    assert client.accepted == []
    client.up.set()
    eventually(lambda: len(client.accepted) == 40)

    assert sorted(d for d, _ in client.accepted) == sorted(message(i).data for i in range(40))
    assert publisher.stop(1.0)
    assert not metrics.dropped


def test_past_the_bound_the_oldest_are_dropped_and_counted():
    client, metrics = RecordingClient(), ForwarderMetrics()
    client.up.clear()
    publisher = make_publisher(client, metrics, queue_size=10, batch_size=5)
    publisher.start()

    for i in range(30):
        publisher.submit(message(i))
    client.up.set()
    eventually(
        lambda: not publisher.queue and metrics.published + metrics.dropped["queue-full"] == 30
    )

    published = {d for d, _ in client.accepted}
    assert {message(i).data for i in range(20, 30)} <= published  # the newest all survive
    assert metrics.dropped["queue-full"] == 30 - len(published)
    assert publisher.stop(1.0)


def test_a_message_pubsub_refuses_is_dropped_not_retried_forever():
    client, metrics = RecordingClient(), ForwarderMetrics()
    client.refuse.add(b"event-1")
    publisher = make_publisher(client, metrics)
    publisher.start()

    for i in range(3):
        publisher.submit(message(i))
    eventually(lambda: metrics.published == 2)

    assert publisher.stop(1.0)
    assert metrics.dropped["rejected"] == 1
    assert client.attempts == 3


def test_stopping_flushes_the_queue_within_the_deadline():
    client, metrics = RecordingClient(), ForwarderMetrics()
    client.up.clear()
    publisher = make_publisher(client, metrics)
    publisher.start()
    for i in range(20):
        publisher.submit(message(i))
    eventually(lambda: metrics.publish_errors >= 1)

    threading.Timer(0.1, client.up.set).start()
    assert publisher.stop(5.0)

    assert len(client.accepted) == 20


def test_stopping_while_pubsub_stays_down_counts_what_is_lost():
    client, metrics = RecordingClient(), ForwarderMetrics()
    client.up.clear()
    publisher = make_publisher(client, metrics)
    publisher.start()
    for i in range(7):
        publisher.submit(message(i))

    started = time.monotonic()
    assert not publisher.stop(0.3)

    assert time.monotonic() - started < 3
    assert metrics.dropped["shutdown"] == 7


def test_while_pubsub_is_reachable_a_full_queue_holds_the_producer_back():
    queue = BoundedQueue(2, lambda n: pytest.fail("nothing may be dropped"))
    queue.put(message(0))
    queue.put(message(1))
    done = threading.Event()

    def produce() -> None:
        queue.put(message(2), wait_while=lambda: True)
        done.set()

    threading.Thread(target=produce, daemon=True).start()
    assert not done.wait(0.05)  # waiting for room, not dropping
    assert [m.data for m in queue.take(1, timeout=0)] == [b"event-0"]
    assert done.wait(2)
    assert [m.data for m in queue.take(5, timeout=0)] == [b"event-1", b"event-2"]


def test_a_storm_against_a_slow_but_reachable_pubsub_loses_nothing():
    client, metrics = RecordingClient(), ForwarderMetrics()
    publisher = make_publisher(client, metrics, queue_size=10, batch_size=3)
    publisher.start()

    for i in range(200):
        publisher.submit(message(i))
    eventually(lambda: len(client.accepted) == 200)

    assert publisher.stop(1.0)
    assert not metrics.dropped


def test_release_lets_a_waiting_producer_go_at_shutdown():
    dropped: list[int] = []
    queue = BoundedQueue(1, dropped.append)
    queue.put(message(0))
    done = threading.Event()

    def produce() -> None:
        queue.put(message(1), wait_while=lambda: True)
        done.set()

    threading.Thread(target=produce, daemon=True).start()

    queue.release()

    assert done.wait(2)
    assert dropped == [1]


def test_a_batch_over_the_request_limit_is_split_into_requests():
    big = [Outbound(b"x" * (2 * 1024 * 1024), {}) for _ in range(6)]  # ~2.7 MB each in base64

    chunks = _chunks(big)

    assert [len(c) for c in chunks] == [2, 2, 2]
    assert [m for c in chunks for m in c] == big
    assert _chunks([message(i) for i in range(500)]) == [[message(i) for i in range(500)]]


def test_a_client_that_raises_fails_the_batch_for_a_retry():
    client, metrics = RecordingClient(), ForwarderMetrics()
    calls: list[int] = []
    publish = client.publish

    def flaky(topic: str, messages: Any, timeout: float) -> Any:
        calls.append(len(messages))
        if len(calls) == 1:
            raise ConnectionError("reset by peer")
        return publish(topic, messages, timeout)

    client.publish = flaky  # type: ignore[method-assign]
    publisher = make_publisher(client, metrics)
    publisher.start()
    for i in range(3):
        publisher.submit(message(i))
    eventually(lambda: metrics.published == 3)

    assert publisher.stop(1.0)
    assert metrics.publish_errors == 1
    assert sorted(d for d, _ in client.accepted) == [message(i).data for i in range(3)]


def test_two_senders_keep_two_batches_in_flight_and_an_outage_delays_both():
    client, metrics = RecordingClient(), ForwarderMetrics()
    together = threading.Barrier(2, timeout=5)
    publish = client.publish

    def overlapping(topic: str, messages: Any, timeout: float) -> Any:
        together.wait()  # returns only while both requests are in flight at once
        return publish(topic, messages, timeout)

    client.publish = overlapping  # type: ignore[method-assign]
    publisher = Publisher(
        client=client,
        topic=TOPIC,
        metrics=metrics,
        queue_size=100,
        batch_size=5,
        timeout=1.0,
        backoff=Backoff(0.01, 0.05),
        in_flight=2,
    )
    for i in range(10):
        publisher.queue.put(message(i))
    publisher.start()
    eventually(lambda: metrics.published == 10)

    assert publisher.stop(1.0)
    assert metrics.publish_errors == 0
    assert sorted(d for d, _ in client.accepted) == sorted(message(i).data for i in range(10))


def test_each_batch_is_prepared_on_the_sender_thread_before_it_is_published():
    client = RecordingClient()
    seen: list[tuple[str, int]] = []

    def prepare(batch: Sequence[Outbound]) -> None:
        seen.append((threading.current_thread().name, len(batch)))
        for m in batch:
            m.attributes["khook.workload.kind"] = "Deployment"

    publisher = make_publisher(client, ForwarderMetrics(), prepare=prepare)
    publisher.start()
    for i in range(5):
        publisher.submit(message(i))
    assert publisher.stop(flush_seconds=5)

    assert sum(n for _, n in seen) == 5
    assert all(name.startswith("khook-publisher-") for name, _ in seen)
    assert [a["khook.workload.kind"] for _, a in client.accepted] == ["Deployment"] * 5


def test_a_failing_prepare_still_publishes_the_batch_as_it_is(caplog: pytest.LogCaptureFixture):
    client = RecordingClient()

    def prepare(batch: Sequence[Outbound]) -> None:
        raise RuntimeError("owner lookup exploded")

    publisher = make_publisher(client, ForwarderMetrics(), prepare=prepare)
    publisher.start()
    for i in range(3):
        publisher.submit(message(i))
    assert publisher.stop(flush_seconds=5)

    assert [d for d, _ in client.accepted] == [b"event-0", b"event-1", b"event-2"]
    assert "preparing a batch of" in caplog.text


def test_a_retried_message_keeps_the_workload_it_was_given():
    client = RecordingClient()
    client.up.clear()
    calls: list[str] = []

    class Owners:
        def resolve(self, namespace: str, kind: str, name: str) -> Workload:
            calls.append(name)
            return Workload(namespace=namespace, kind="Deployment", name="checkout")

    attach = partial(attach_workloads, Owners())  # type: ignore[arg-type]
    publisher = make_publisher(client, ForwarderMetrics(), prepare=attach)
    publisher.start()
    publisher.submit(
        Outbound(b"e", {"khook.namespace": "shop"}, OwnedObject("shop", "Pod", "checkout-1"))
    )
    eventually(lambda: client.attempts >= 2)  # failed, backed off, tried again
    client.up.set()
    assert publisher.stop(flush_seconds=5)

    assert calls == ["checkout-1"]  # looked up once, not on every retry
    [(_, attributes)] = client.accepted
    assert attributes["khook.workload.name"] == "checkout"
