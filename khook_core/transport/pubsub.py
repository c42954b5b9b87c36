"""Pub/Sub messages delivered as CloudEvents: decoding and the one handler Pub/Sub functions use.

A push delivery reaches a gen2 function as a CloudEvent whose ``data`` is
``{"message": {"data": <base64>, "attributes": {...}, "messageId": ..., "publishTime": ...}}``;
only those four fields are read, since functions-framework drops the rest.

The answer to Pub/Sub is the function's return or raise. ``handle_pubsub`` applies the failure
rule: a message that can never be processed is logged with its message id, counted and
acknowledged (return), so it cannot loop; a transient failure raises, so Pub/Sub redelivers
it, and the pipeline has already released any claim, so the retry can fire and nothing fires
twice.

Example::

    @transport.serve_pushes
    @functions_framework.cloud_event
    def handle(cloud_event: CloudEvent) -> None:
        handle_pubsub("kafka", cloud_event, parse=parse_text)
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from khook_core import jsontext, logs
from khook_core.errors import InvalidEventError, TransientError
from khook_core.pipeline import Decision, run_pipeline
from khook_core.sources.base import PUBSUB_MESSAGE_ID, PUBSUB_TOPIC
from khook_core.transport import describe

if TYPE_CHECKING:
    from khook_core.runtime import Runtime

logger = logging.getLogger(__name__)


class CloudEventLike(Protocol):
    """What is read from a ``cloudevents`` CloudEvent (no import of that package needed)."""

    @property
    def data(self) -> Any: ...

    def get(self, key: str, default: Any = None) -> Any: ...


@dataclass(frozen=True)
class PubSubMessage:
    """One decoded Pub/Sub message."""

    data: bytes
    attributes: dict[str, str]
    message_id: str
    publish_time: str = ""


@dataclass
class PubSubStats:
    """Counts for this instance, logged with each invalid message (no metrics backend needed)."""

    received: int = 0
    invalid: int = 0
    retried: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def count(self, what: str) -> int:
        with self._lock:
            value: int = getattr(self, what) + 1
            setattr(self, what, value)
            return value


STATS = PubSubStats()
"""Process-wide counters; functions-framework serves requests from several threads."""


def decode_message(cloud_event: CloudEventLike) -> PubSubMessage:
    """The Pub/Sub message inside a ``google.cloud.pubsub.topic.v1.messagePublished`` CloudEvent.

    Raises:
        InvalidEventError: no ``message`` object, ``data`` that is not base64, or attributes
            that are not strings. ``field`` names the culprit.
    """
    body = cloud_event.data
    if isinstance(body, bytes | str):
        body = jsontext.loads(body, field="data")
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, dict):
        raise InvalidEventError(
            "CloudEvent data has no Pub/Sub 'message' object", field="data.message"
        )
    message_id = str(
        message.get("messageId") or message.get("message_id") or cloud_event.get("id") or ""
    )
    if not jsontext.encodable(message_id):
        raise InvalidEventError(
            jsontext.unencodable_message("message.messageId"), field="message.messageId"
        )
    encoded = message.get("data") or ""
    if not isinstance(encoded, str):
        raise InvalidEventError("message.data must be a base64 string", field="message.data")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidEventError(
            f"message {message_id}: data is not valid base64", field="message.data"
        ) from exc
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()
    ):
        raise InvalidEventError(
            f"message {message_id}: attributes must map strings to strings",
            field="message.attributes",
        )
    where = jsontext.unencodable_path(attributes, "message.attributes")
    if where is not None:
        raise InvalidEventError(
            f"message {message_id}: {jsontext.unencodable_message(where)}", field=where
        )
    return PubSubMessage(
        data,
        attributes,
        message_id,
        str(message.get("publishTime") or message.get("publish_time") or ""),
    )


def topic_of(cloud_event: CloudEventLike) -> str:
    """The topic name from the CloudEvent ``source`` (``//pubsub.googleapis.com/projects/P/
    topics/T``, as Eventarc and functions-framework build it), or ""."""
    source = str(cloud_event.get("source") or "")
    _, found, topic = source.rpartition("/topics/")
    return topic if found else ""


def parse_json(data: bytes) -> Any:
    """The payload as JSON.

    Raises:
        InvalidEventError: empty, not UTF-8, not JSON, or refused by ``jsontext.loads``
            (too deep, not finite, a lone surrogate).
    """
    if not data:
        raise InvalidEventError(
            "the message has no data (expected a JSON object)", field="message.data"
        )
    return jsontext.loads(data, field="message.data")


def parse_text(data: bytes) -> Any:
    """The payload as text, for sources whose records are not JSON.

    Raises:
        InvalidEventError: not UTF-8.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEventError("message data is not UTF-8 text", field="message.data") from exc


def handle_pubsub(
    source: str,
    cloud_event: CloudEventLike,
    *,
    runtime: Runtime | None = None,
    parse: Callable[[bytes], Any] = parse_json,
) -> list[Decision]:
    """Decode one delivery, run the pipeline and answer Pub/Sub by returning or raising.

    Args:
        source: the source plugin that normalises the payload (``kubernetes``, ``kafka`` ...).
        cloud_event: the delivery.
        runtime: defaults to the process-wide ``get_runtime()``.
        parse: turns the message bytes into the source's raw payload.

    Returns:
        The pipeline's decisions; empty when the message was invalid and acknowledged.

    Raises:
        TransientError: some decision is retryable; Pub/Sub redelivers the message.
    """
    STATS.count("received")
    started = time.monotonic()
    received_ns = time.time_ns()  # the receive span and its decode span start here
    message_id = str(cloud_event.get("id") or "")
    with logs.bind(source=source, pubsub_message_id=message_id):
        try:
            message = decode_message(cloud_event)
            message_id = message.message_id or message_id
            raw = parse(message.data)
            decoded_ns = time.time_ns()
            if runtime is None:
                from khook_core.liveconfig.reload import current_runtime

                runtime = current_runtime(source)  # the live configuration
            attributes = {k.lower(): v for k, v in message.attributes.items()}
            attributes[PUBSUB_MESSAGE_ID] = message_id
            attributes[PUBSUB_TOPIC] = topic_of(cloud_event)
            # The publisher's ``traceparent`` attribute (the forwarder's) is this span's parent.
            with runtime.telemetry.span(
                f"receive {source}",
                parent=attributes,
                kind="consumer",
                start_ns=received_ns,
                attributes={"khook.source": source, "messaging.message.id": message_id},
            ):
                runtime.telemetry.record_span("decode", received_ns, decoded_ns)
                decisions = run_pipeline(
                    source,
                    raw,
                    attributes,
                    runtime=runtime,
                    deadline=started + runtime.settings.invocation_budget,
                )
        except InvalidEventError as exc:
            invalid = STATS.count("invalid")
            logger.warning(
                "acknowledging invalid %s message %s: %s",
                source,
                message_id,
                exc.message,
                extra={"error": exc.to_json(), "invalid_messages": invalid},
            )
            return []
        if logger.isEnabledFor(logging.INFO):  # the texts are built only to be logged
            for text in describe.decision_texts(decisions):
                logger.info(
                    "%s message %s%s: %s", source, message_id, describe.origin(attributes), text
                )
        retry = [d for d in decisions if d.retryable]
        if retry:
            STATS.count("retried")
            details = "; ".join(f"{d.decision} {d.hook or ''} {d.detail}".strip() for d in retry)
            raise TransientError(f"{source} message {message_id}: retry for redelivery: {details}")
        return decisions
