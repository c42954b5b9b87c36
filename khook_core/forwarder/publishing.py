"""Publishing to Pub/Sub through a bounded queue that survives an unreachable Pub/Sub.

The watch threads put messages in a ``BoundedQueue``; a sender thread takes a batch, publishes
it in one request of Pub/Sub's REST API (``pubsub_rest``) and waits for the answer; with
``in_flight`` senders that many batches are in flight at once (a request's round trip, not its
size, bounds a storm's rate). A failed batch goes back into the queue in its place by age (the
front, unless another sender's older batch is back first) and its sender backs off
(exponential, with jitter), so an outage delays messages instead of losing them. Memory is
bounded by the queue. When messages pile up:

* Pub/Sub is reachable but slower than the watch (a storm): past two batches ``put`` waits,
  which holds the watch back. The API server buffers, and at worst closes the watch, which then
  resumes from its resourceVersion: slower, nothing lost, and memory stays flat.
* Pub/Sub is unreachable (the sender is backing off): the queue fills to its bound, then
  ``put`` drops the *oldest* message, counted and logged, because a fresh Event is worth more
  to an agent than a stale one, and waiting would only stall the watch until its
  resourceVersion expires.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from khook_core.forwarder.backoff import Backoff
from khook_core.forwarder.filtering import Outbound
from khook_core.forwarder.metrics import ForwarderMetrics
from khook_core.forwarder.pubsub_rest import PublishError, rest_client
from khook_core.telemetry import NOOP, Telemetry

if TYPE_CHECKING:
    from khook_core.forwarder.config import ForwarderSettings

logger = logging.getLogger(__name__)


class PublishClient(Protocol):
    """Publishes a batch and says what became of each message (``pubsub_rest`` is the real
    one; tests substitute their own)."""

    def publish(
        self, topic: str, messages: Sequence[Outbound], timeout: float
    ) -> Sequence[BaseException | None]:
        """None for each message published, its error for each one not published."""
        ...

    def stop(self) -> None: ...


class BoundedQueue:
    """FIFO of outbound messages with a hard bound.

    Args:
        bound: the most messages held; past it the oldest are dropped.
        on_drop: called with the number of messages dropped to make room.
        hold_at: the depth from which ``put`` waits while its ``wait_while`` holds; below the
            bound, so a storm against a reachable Pub/Sub never fills the queue (memory stays
            near ``hold_at`` messages) and the bound is kept for outages.
    """

    def __init__(
        self, bound: int, on_drop: Callable[[int], None], hold_at: int | None = None
    ) -> None:
        self.bound = bound
        self.hold_at = min(bound, hold_at or bound)
        self._items: deque[Outbound] = deque()
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._on_drop = on_drop
        self._released = False
        self._next_seq = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Outbound, *, wait_while: Callable[[], bool] = lambda: False) -> None:
        """Append ``item``: past ``hold_at`` wait while ``wait_while()``; past the bound drop
        the oldest."""
        with self._lock:
            while len(self._items) >= self.hold_at and wait_while() and not self._released:
                self._not_full.wait(0.2)
            item.seq = self._next_seq
            self._next_seq += 1
            self._items.append(item)
            dropped = self._trim()
            self._not_empty.notify()
        if dropped:
            self._on_drop(dropped)

    def requeue(self, items: Sequence[Outbound]) -> None:
        """Return a failed batch to its place by age: usually the front, but with several
        senders another one may have requeued an older batch, or taken newer messages, since
        this one was taken. Past the bound the oldest are dropped, whichever batch they are in."""
        with self._lock:
            if not self._items or items[-1].seq < self._items[0].seq:
                self._items.extendleft(reversed(items))
            else:
                self._items = deque(sorted((*self._items, *items), key=_by_seq))
            dropped = self._trim()
            self._not_empty.notify()
        if dropped:
            self._on_drop(dropped)

    def take(self, limit: int, timeout: float, linger: float = 0.0) -> list[Outbound]:
        """Up to ``limit`` messages; waits up to ``timeout`` seconds for the first one, then
        up to ``linger`` seconds for the batch to fill."""
        with self._lock:
            if not self._items:
                self._not_empty.wait(timeout)
            if self._items and linger > 0 and not self._released:
                until = time.monotonic() + linger
                while len(self._items) < limit and (left := until - time.monotonic()) > 0:
                    self._not_empty.wait(left)
            count = min(limit, len(self._items))
            taken = [self._items.popleft() for _ in range(count)]
            if taken:
                self._not_full.notify_all()
            return taken

    def release(self) -> None:
        """Stop making producers wait (shutdown): from now on a full queue drops the oldest."""
        with self._lock:
            self._released = True
            self._not_full.notify_all()
            self._not_empty.notify_all()

    def wake(self) -> None:
        with self._lock:
            self._not_empty.notify_all()

    def _trim(self) -> int:
        excess = len(self._items) - self.bound
        for _ in range(max(0, excess)):
            self._items.popleft()
        return max(0, excess)


def _by_seq(message: Outbound) -> int:
    return message.seq


def pubsub_client(settings: ForwarderSettings) -> PublishClient:
    """The REST client for the emulator (plain HTTP, no credentials) or Pub/Sub."""
    return rest_client(settings)


def _is_permanent(exc: BaseException) -> bool:
    """Errors no retry can fix (a message Pub/Sub refuses); everything else is retried."""
    return isinstance(exc, PublishError) and exc.permanent


class Publisher:
    """Owns the queue and the sender thread.

    Args:
        client: a ``PublishClient``; see ``pubsub_client``.
        topic: ``projects/P/topics/T``.
        metrics: shared counters.
        queue_size / batch_size / timeout: see ``ForwarderSettings``.
        linger: how long a partial batch waits for company (``batch_latency_seconds``).
        in_flight: sender threads, so at most this many batches in flight at once.
        backoff: the retry schedule after a failed batch.
        prepare: called by the sender with each batch just before it is published (the
            owner lookups, ``filtering.attach_workloads``): work that may wait on the network
            runs here rather than on the watch thread. An error in it is logged and the batch
            is published as it is.
    """

    def __init__(
        self,
        *,
        client: PublishClient,
        topic: str,
        metrics: ForwarderMetrics,
        queue_size: int,
        batch_size: int,
        timeout: float,
        backoff: Backoff,
        telemetry: Telemetry = NOOP,
        linger: float = 0.0,
        in_flight: int = 1,
        prepare: Callable[[Sequence[Outbound]], None] | None = None,
    ) -> None:
        self.client = client
        self.prepare = prepare
        self.telemetry = telemetry
        self.topic = topic
        self.metrics = metrics
        self.batch_size = batch_size
        self.timeout = timeout
        self.backoff = backoff
        self.linger = linger
        # Two batches queued keep the senders busy; more would only cost memory in a storm.
        self.queue = BoundedQueue(queue_size, self._dropped, hold_at=2 * batch_size)
        metrics.queue_depth = lambda: len(self.queue)
        self._stopping = threading.Event()
        self._deadline = float("inf")
        # Each sender backs off on its own schedule (the first one's is ``backoff``).
        self._backoffs = [backoff] + [
            Backoff(backoff.initial, backoff.maximum) for _ in range(in_flight - 1)
        ]
        self._threads = [
            threading.Thread(target=self._run, args=(b,), name=f"khook-publisher-{n}", daemon=True)
            for n, b in enumerate(self._backoffs)
        ]
        self._last_drop_log = 0.0

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def submit(self, message: Outbound) -> None:
        """Queue one message; waits for room only while Pub/Sub is reachable (module docstring)."""
        self.queue.put(message, wait_while=self.healthy)

    def healthy(self) -> bool:
        """The last publish attempt succeeded (the sender is not backing off)."""
        return all(b.attempts == 0 for b in self._backoffs) and not self._stopping.is_set()

    def stop(self, flush_seconds: float) -> bool:
        """Publish what is queued within ``flush_seconds``, then stop.

        Returns:
            True when the queue was empty at the end; otherwise the rest is counted as dropped.
        """
        self._deadline = time.monotonic() + flush_seconds
        self._stopping.set()
        self.queue.release()
        end = time.monotonic() + flush_seconds + self.timeout + 1
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))
        left = len(self.queue)
        if left:
            self.metrics.messages_dropped("shutdown", left)
            logger.error(
                "shutdown: %d queued messages could not be published in %.0f s", left, flush_seconds
            )
        try:
            self.client.stop()
        except Exception:  # already stopping; nothing left to protect
            logger.debug("publisher client stop failed", exc_info=True)
        return left == 0

    def _dropped(self, count: int) -> None:
        self.metrics.messages_dropped("queue-full", count)
        now = time.monotonic()
        if now - self._last_drop_log > 5:  # one line per 5 s, not one per message, in an outage
            self._last_drop_log = now
            logger.error(
                "publish queue full (%d): dropped the %d oldest message(s); see "
                "khook_forwarder_messages_dropped_total",
                self.queue.bound,
                count,
            )

    def _run(self, backoff: Backoff) -> None:
        while True:
            if self._stopping.is_set() and (not self.queue or time.monotonic() > self._deadline):
                return
            batch = self.queue.take(self.batch_size, timeout=0.2, linger=self.linger)
            if not batch:
                continue
            failed = self._publish(batch)
            if failed:
                self.queue.requeue(failed)
                self._pause(backoff.next())
            else:
                backoff.reset()

    def _pause(self, delay: float) -> None:
        """Back off; a stop request cuts the wait short, the flush deadline bounds it."""
        if not self._stopping.is_set():
            self._stopping.wait(delay)
        else:
            time.sleep(min(delay, max(0.0, self._deadline - time.monotonic())))

    def _publish(self, batch: Sequence[Outbound]) -> list[Outbound]:
        """Publish one batch; return the messages to retry."""
        if self.prepare is not None:
            try:
                self.prepare(batch)
            except Exception:  # the attributes it adds are optional; the messages are not
                logger.exception("preparing a batch of %d message(s) failed", len(batch))
        for message in batch:
            self._traced(message.attributes)
        try:
            outcomes = self.client.publish(self.topic, batch, self.timeout)
        except Exception as exc:  # a client that raises fails the whole batch, retried
            outcomes = [exc] * len(batch)
        return self._collect(batch, outcomes)

    def _traced(self, attributes: dict[str, str]) -> dict[str, str]:
        """The attributes, with the ``traceparent`` of a new trace for the event when
        telemetry is on: the function that receives it continues that trace. Set on the queued
        message itself, so a retried publish is a new span of the same trace."""
        if not self.telemetry.enabled:
            return attributes
        with self.telemetry.span(
            f"publish {self.topic.rpartition('/')[2]}",
            parent=attributes,  # a retry continues its first attempt's trace
            kind="producer",
            attributes={
                "khook.namespace": attributes.get("khook.namespace", ""),
                "khook.reason": attributes.get("khook.reason", ""),
            },
        ):
            attributes.update(self.telemetry.trace_headers())
        return attributes

    def _collect(
        self, batch: Sequence[Outbound], outcomes: Sequence[BaseException | None]
    ) -> list[Outbound]:
        failed: list[Outbound] = []
        first_error: BaseException | None = None
        published = 0
        for message, error in zip(batch, outcomes, strict=True):
            if error is None:
                published += 1
            elif _is_permanent(error):  # classified: a retried message is never lost
                self.metrics.messages_dropped("rejected")
                logger.error("Pub/Sub rejected a message (%s); dropped", error)
            else:
                first_error = first_error or error
                failed.append(message)
        self.metrics.messages_published(published)
        if failed:
            self.metrics.publish_failed()
            logger.warning(
                "publishing %d message(s) to %s failed, will retry: %s",
                len(failed),
                self.topic,
                first_error,
            )
        return failed
