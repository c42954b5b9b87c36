"""An in-process Pub/Sub for machines without the emulator: same REST API, same delivery rules.

``khook send`` and the stack's set-up talk to it exactly as to the emulator (``PUT`` topics and
subscriptions, ``POST .../topics/T:publish``), and it pushes to the functions the body real
Pub/Sub pushes, so the functions cannot tell the difference. Semantics
kept: at-least-once (a message is acknowledged only by a 2xx answer), redelivery of every
failure after an exponential backoff between the subscription's ``minimumBackoff`` and
``maximumBackoff``, and after ``maxDeliveryAttempts`` failures a dead letter, which is appended
to a JSON-lines file (there is no process to pull a dead-letter topic). Not kept: durability
(messages live in memory until delivered), pull subscriptions, filters, ordering.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import itertools
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from khook_core import timeparse
from khook_local.loopback import LoopbackServer, OwnedServer

logger = logging.getLogger(__name__)

ACK_STATUSES: Final = frozenset({102, 200, 201, 202, 204})
"""What Pub/Sub push treats as an acknowledgement; anything else is a nack."""
DEFAULT_MAX_ATTEMPTS: Final = 5
WORKERS: Final = 4
"""Concurrent pushes; enough for a demo and for the 2-core machines this runs on."""
STOP_JOIN_S: Final = 2.0
"""How often the HTTP server checks for shutdown (the stdlib default, 0.5 s, slows stops)."""
"""A push in flight may take up to its ack deadline; stopping does not wait for it."""
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$")
_ROUTE = re.compile(r"^/v1/projects/([^/]+)/(topics|subscriptions)/([^/:]+)(:[a-zA-Z]+)?$")


class BusError(Exception):
    """A refused admin or publish request, answered like Google APIs answer errors."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": int(self.status),
                "message": str(self),
                "status": _GOOGLE_STATUS.get(self.status, "UNKNOWN"),
            }
        }


_GOOGLE_STATUS = {
    HTTPStatus.BAD_REQUEST: "INVALID_ARGUMENT",
    HTTPStatus.NOT_FOUND: "NOT_FOUND",
    HTTPStatus.CONFLICT: "ALREADY_EXISTS",
    HTTPStatus.METHOD_NOT_ALLOWED: "UNIMPLEMENTED",
}


def parse_duration(value: Any, default: float) -> float:
    """Seconds from a protobuf JSON duration (``"1.5s"``), read as every duration is."""
    if value is None:
        return default
    try:
        seconds = timeparse.parse_seconds(str(value))
    except ValueError:
        raise BusError(HTTPStatus.BAD_REQUEST, f"invalid duration {value!r}") from None
    if not 0 <= seconds <= 600:
        raise BusError(HTTPStatus.BAD_REQUEST, f"duration {value!r} is outside 0s..600s")
    return seconds


@dataclass(frozen=True)
class Subscription:
    """A push subscription and its retry and dead-letter policies."""

    path: str
    topic: str
    push_endpoint: str
    ack_deadline_s: float = 10.0
    min_backoff_s: float = 10.0
    max_backoff_s: float = 600.0
    dead_letter_topic: str | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS

    def backoff(self, attempt: int) -> float:
        """Delay before delivery ``attempt + 1``: doubling from the minimum, capped."""
        return float(min(self.max_backoff_s, self.min_backoff_s * 2 ** (attempt - 1)))

    @classmethod
    def from_rest(cls, path: str, body: dict[str, Any]) -> Subscription:
        """From a ``PUT .../subscriptions/S`` body.

        Raises:
            BusError: a pull subscription, or an invalid field.
        """
        push = (body.get("pushConfig") or {}).get("pushEndpoint")
        if not push:
            raise BusError(
                HTTPStatus.BAD_REQUEST,
                "the in-process bus supports push subscriptions only (set pushConfig.pushEndpoint)",
            )
        if not str(push).startswith(("http://", "https://")):
            raise BusError(HTTPStatus.BAD_REQUEST, f"push endpoint {push!r} is not http(s)")
        retry = body.get("retryPolicy") or {}
        dead = body.get("deadLetterPolicy") or {}
        attempts = int(dead.get("maxDeliveryAttempts") or DEFAULT_MAX_ATTEMPTS)
        if dead and not 5 <= attempts <= 100:
            raise BusError(HTTPStatus.BAD_REQUEST, "maxDeliveryAttempts must be 5..100")
        return cls(
            path=path,
            topic=str(body.get("topic", "")),
            push_endpoint=str(push),
            ack_deadline_s=float(body.get("ackDeadlineSeconds") or 10),
            min_backoff_s=parse_duration(retry.get("minimumBackoff"), 10.0),
            max_backoff_s=parse_duration(retry.get("maximumBackoff"), 600.0),
            dead_letter_topic=dead.get("deadLetterTopic") or None,
            max_attempts=attempts,
        )


@dataclass
class Delivery:
    """One message on its way to one subscription."""

    subscription: Subscription
    message: dict[str, Any]
    attempt: int = 1
    last_error: str = ""


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    delivery: Delivery = field(compare=False)


class MemoryBus:
    """Topics, push subscriptions and a delivery scheduler, behind the Pub/Sub REST API.

    Args:
        dead_letter_path: the JSON-lines file dead letters are appended to.
        on_dead_letter: called with each dead-letter record (the console prints it).
        clock: monotonic seconds; injectable for tests.

    Example::

        bus = MemoryBus(Path(".khook/dead-letters.jsonl")).start(8085)
        RestEndpoint(bus.host).create_topic("khook-kafka")
        ...
        bus.stop()
    """

    def __init__(
        self,
        dead_letter_path: Path,
        on_dead_letter: Callable[[dict[str, Any]], None] | None = None,
        clock: Callable[[], float] | None = None,
        workers: int = WORKERS,
    ) -> None:
        self.dead_letter_path = dead_letter_path
        self.on_dead_letter = on_dead_letter
        self.clock = clock or time.monotonic
        self.topics: dict[str, list[Subscription]] = {}
        self._due: list[_Due] = []
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._stopping = False
        self._workers = [
            threading.Thread(target=self._work, name=f"bus-push-{i}", daemon=True)
            for i in range(workers)
        ]
        self._server = LoopbackServer(_Handler, self, "bus-http")
        self._write_lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, port: int = 0) -> MemoryBus:
        self._server.start(port)
        for worker in self._workers:
            worker.start()
        return self

    def stop(self) -> None:
        """Stop accepting and delivering; undelivered messages are dropped (memory only)."""
        self._server.stop()
        with self._cond:
            self._stopping = True
            pending = len(self._due)
            self._cond.notify_all()
        for worker in self._workers:
            if worker.is_alive():
                worker.join(STOP_JOIN_S)
        if pending:
            logger.info("in-process bus stopped with %d deliveries pending", pending)

    # -- admin and publish ----------------------------------------------------------------

    def create_topic(self, path: str) -> dict[str, Any]:
        _check_name(path)
        with self._cond:
            if path in self.topics:
                raise BusError(HTTPStatus.CONFLICT, f"topic {path} already exists")
            self.topics[path] = []
        return {"name": path}

    def create_subscription(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        _check_name(path)
        subscription = Subscription.from_rest(path, body)
        with self._cond:
            subs = self.topics.get(subscription.topic)
            if subs is None:
                raise BusError(HTTPStatus.NOT_FOUND, f"topic {subscription.topic} not found")
            if any(s.path == path for t in self.topics.values() for s in t):
                raise BusError(HTTPStatus.CONFLICT, f"subscription {path} already exists")
            subs.append(subscription)
        return {**body, "name": path}

    def publish(self, topic: str, messages: Any) -> list[str]:
        """Accept messages (validated like Pub/Sub) and schedule one delivery a subscription.

        Raises:
            BusError: unknown topic or an invalid message; nothing is published then.
        """
        if not isinstance(messages, list) or not messages:
            raise BusError(HTTPStatus.BAD_REQUEST, "messages must be a non-empty list")
        checked = [_check_message(m, i) for i, m in enumerate(messages)]
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        ids: list[str] = []
        with self._cond:
            subs = self.topics.get(topic)
            if subs is None:
                raise BusError(HTTPStatus.NOT_FOUND, f"topic {topic} not found")
            for data, attributes in checked:
                message_id = str(next(self._ids))
                ids.append(message_id)
                message = {
                    "data": data,
                    "attributes": attributes,
                    "messageId": message_id,
                    "message_id": message_id,
                    "publishTime": now,
                    "publish_time": now,
                }
                for sub in subs:
                    self._schedule(Delivery(sub, message), 0.0)
            self._cond.notify_all()
        logger.debug("published %d messages to %s", len(ids), topic)
        return ids

    # -- delivery -------------------------------------------------------------------------

    def _schedule(self, delivery: Delivery, delay: float) -> None:
        heapq.heappush(self._due, _Due(self.clock() + delay, next(self._seq), delivery))

    def _next(self) -> Delivery | None:
        with self._cond:
            while not self._stopping:
                now = self.clock()
                if self._due and self._due[0].at <= now:
                    return heapq.heappop(self._due).delivery
                self._cond.wait(self._due[0].at - now if self._due else None)
            return None

    def _work(self) -> None:
        while (delivery := self._next()) is not None:
            error = push(delivery)
            if error is None:
                continue
            delivery.last_error = error
            sub = delivery.subscription
            logger.debug(
                "push of message %s to %s failed (attempt %d): %s",
                delivery.message["messageId"],
                sub.push_endpoint,
                delivery.attempt,
                error,
            )
            if sub.dead_letter_topic and delivery.attempt >= sub.max_attempts:
                self._dead_letter(delivery)
                continue
            with self._cond:
                if self._stopping:
                    return
                backoff = sub.backoff(delivery.attempt)
                delivery.attempt += 1
                self._schedule(delivery, backoff)
                self._cond.notify()

    def _dead_letter(self, delivery: Delivery) -> None:
        sub = delivery.subscription
        message = delivery.message
        project = sub.path.split("/")[1]
        attributes = {
            **message["attributes"],
            "CloudPubSubDeadLetterSourceSubscription": sub.path.rsplit("/", 1)[-1],
            "CloudPubSubDeadLetterSourceSubscriptionProject": project,
            "CloudPubSubDeadLetterSourceTopicPublishTime": message["publishTime"],
            "CloudPubSubDeadLetterSourceDeliveryCount": str(delivery.attempt),
        }
        record = {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "topic": sub.dead_letter_topic,
            "subscription": sub.path,
            "messageId": message["messageId"],
            "deliveryAttempts": delivery.attempt,
            "lastError": delivery.last_error,
            "data": message["data"],
            "attributes": attributes,
        }
        with self._write_lock:
            self.dead_letter_path.parent.mkdir(parents=True, exist_ok=True)
            with self.dead_letter_path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        # The stack prints its own line through on_dead_letter; a bare bus warns.
        logger.log(
            logging.DEBUG if self.on_dead_letter else logging.WARNING,
            "message %s dead-lettered after %d attempts: %s",
            message["messageId"],
            delivery.attempt,
            delivery.last_error,
            extra={"subscription": sub.path, "dead_letter_topic": sub.dead_letter_topic},
        )
        if self.on_dead_letter is not None:
            self.on_dead_letter(record)


def push(delivery: Delivery) -> str | None:
    """POST the wrapped push body; None when acknowledged, else why not."""
    sub = delivery.subscription
    body: dict[str, Any] = {"message": delivery.message, "subscription": sub.path}
    if sub.dead_letter_topic:
        body["deliveryAttempt"] = delivery.attempt
    request = urllib.request.Request(  # noqa: S310 - from_rest admits http(s) endpoints only
        sub.push_endpoint,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=sub.ack_deadline_s) as reply:  # noqa: S310
            status = reply.status
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if status in ACK_STATUSES else f"HTTP {status}"


def _check_name(path: str) -> None:
    name = path.rsplit("/", 1)[-1]
    if not _NAME.match(name):
        raise BusError(
            HTTPStatus.BAD_REQUEST,
            f"invalid resource name {name!r}: 3-255 characters, starting with a letter",
        )


def _check_message(message: Any, index: int) -> tuple[str, dict[str, str]]:
    if not isinstance(message, dict):
        raise BusError(HTTPStatus.BAD_REQUEST, f"messages[{index}] must be an object")
    data = message.get("data") or ""
    attributes = message.get("attributes") or {}
    if not isinstance(data, str):
        raise BusError(HTTPStatus.BAD_REQUEST, f"messages[{index}].data must be base64 text")
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BusError(
            HTTPStatus.BAD_REQUEST, f"messages[{index}].data is not valid base64"
        ) from None
    if not isinstance(attributes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()
    ):
        raise BusError(
            HTTPStatus.BAD_REQUEST, f"messages[{index}].attributes must map strings to strings"
        )
    if not data and not attributes:
        raise BusError(HTTPStatus.BAD_REQUEST, f"messages[{index}] has neither data nor attributes")
    return data, attributes


class _Handler(BaseHTTPRequestHandler):
    """The REST routes: ``GET /``, ``PUT`` topic/subscription, ``POST`` topic ``:publish``."""

    server_version = "khook-bus"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("bus %s", format % args)

    def do_GET(self) -> None:
        if urlsplit(self.path).path == "/":
            self._send(HTTPStatus.OK, b"Ok\n", "text/plain")
        else:
            self._error(BusError(HTTPStatus.NOT_FOUND, f"no route GET {self.path}"))

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_POST(self) -> None:
        self._route("POST")

    def _route(self, method: str) -> None:
        assert isinstance(self.server, OwnedServer)
        bus: MemoryBus = self.server.owner
        try:
            body = self._body()
            match = _ROUTE.match(urlsplit(self.path).path)
            if match is None:
                raise BusError(HTTPStatus.NOT_FOUND, f"no route {method} {self.path}")
            project, kind, name, verb = match.groups()
            path = f"projects/{project}/{kind}/{name}"
            if method == "PUT" and kind == "topics" and not verb:
                answer = bus.create_topic(path)
            elif method == "PUT" and kind == "subscriptions" and not verb:
                answer = bus.create_subscription(path, body)
            elif method == "POST" and kind == "topics" and verb == ":publish":
                answer = {"messageIds": bus.publish(path, body.get("messages"))}
            else:
                raise BusError(
                    HTTPStatus.METHOD_NOT_ALLOWED,
                    f"{method} {self.path} is not supported by the in-process bus",
                )
        except BusError as exc:
            self._error(exc)
            return
        self._send(HTTPStatus.OK, json.dumps(answer).encode(), "application/json")

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise BusError(HTTPStatus.BAD_REQUEST, "the request body is not JSON") from None
        if not isinstance(body, dict):
            raise BusError(HTTPStatus.BAD_REQUEST, "the request body must be a JSON object")
        return body

    def _error(self, exc: BusError) -> None:
        self._send(exc.status, json.dumps(exc.body()).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
