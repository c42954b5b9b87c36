"""Topics and subscriptions of the local stack, the same on the emulator and the in-process bus.

For each CloudEvent function: topic ``khook-<name>``, a push subscription to the function (with
the topic path in the URL, so functions-framework builds the CloudEvent ``source`` as Eventarc
does), retry with backoff and a dead-letter topic after ``MAX_DELIVERY_ATTEMPTS``. On the
emulator, each dead-letter topic also gets a pull subscription that a drain thread empties into
``dead-letters.jsonl``, so dead letters end up in the same file whichever bus runs. A
``Ticker`` plays Cloud Scheduler for the ``sweep`` function's topic.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from khook_local.emulator import PubSubRest

logger = logging.getLogger(__name__)

MAX_DELIVERY_ATTEMPTS: Final = 5
ACK_DEADLINE_S: Final = 60
"""The functions' timeout: a push is given as long as the function may run."""
MIN_BACKOFF: Final = "1s"
MAX_BACKOFF: Final = "10s"
"""Five attempts 1, 2, 4 and 8 s apart: a dead letter within about 15 s of the first failure."""
DRAIN_INTERVAL_S: Final = 1.0
TICK: Final = b'{"tick": "sweep"}'
"""What a tick carries (the sweep function reads nothing from it, as from Cloud Scheduler's)."""


@dataclass(frozen=True)
class Route:
    """One topic feeding one function."""

    topic: str
    push_endpoint: str

    @property
    def push_subscription(self) -> str:
        return f"{self.topic}-push"

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.topic}-dead-letter"

    @property
    def dead_letter_subscription(self) -> str:
        return f"{self.topic}-dead-letter-sub"


def create(api: PubSubRest, routes: list[Route], *, pull_dead_letters: bool) -> None:
    """Create every topic and subscription (on a fresh bus: both start empty)."""
    for route in routes:
        api.create_topic(route.topic)
        api.create_topic(route.dead_letter_topic)
        if pull_dead_letters:
            api.create_subscription(route.dead_letter_topic, route.dead_letter_subscription)
        api.create_subscription(
            route.topic,
            route.push_subscription,
            push_endpoint=route.push_endpoint,
            ack_deadline=ACK_DEADLINE_S,
            dead_letter_topic=route.dead_letter_topic,
            max_delivery_attempts=MAX_DELIVERY_ATTEMPTS,
            min_backoff=MIN_BACKOFF,
            max_backoff=MAX_BACKOFF,
        )


class DeadLetterDrain:
    """Pulls the emulator's dead-letter subscriptions into the dead-letters file."""

    def __init__(
        self,
        api: PubSubRest,
        routes: list[Route],
        path: Path,
        on_dead_letter: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.api = api
        self.routes = routes
        self.path = path
        self.on_dead_letter = on_dead_letter
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dead-letter-drain", daemon=True)

    def start(self) -> DeadLetterDrain:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def drain(self) -> int:
        """Move what is waiting now; returns how many dead letters were written."""
        written = 0
        for route in self.routes:
            for message in self.api.pull(route.dead_letter_subscription):
                record = {
                    "time": datetime.now(UTC).isoformat(timespec="seconds"),
                    "topic": self.api.topic_path(route.dead_letter_topic),
                    "subscription": self.api.subscription_path(route.push_subscription),
                    "messageId": message.message_id,
                    "deliveryAttempts": int(
                        message.attributes.get("CloudPubSubDeadLetterSourceDeliveryCount", "0") or 0
                    ),
                    "data": base64.b64encode(message.data).decode(),
                    "attributes": message.attributes,
                }
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
                written += 1
                if self.on_dead_letter is not None:
                    self.on_dead_letter(record)
        return written

    def _run(self) -> None:
        while not self._stop.wait(DRAIN_INTERVAL_S):
            try:
                self.drain()
            except OSError as exc:  # the emulator is stopping, or briefly unreachable
                logger.debug("dead-letter drain: %s", exc)


class Ticker:
    """Publishes a tick to ``topic`` every ``every`` seconds: Cloud Scheduler's job, locally."""

    def __init__(self, api: PubSubRest, topic: str, every: float) -> None:
        self.api = api
        self.topic = topic
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"tick-{topic}", daemon=True)

    def start(self) -> Ticker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.api.publish(self.topic, TICK)
            except OSError as exc:  # the bus is stopping, or briefly unreachable
                logger.debug("tick to %s: %s", self.topic, exc)
