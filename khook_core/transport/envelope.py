"""Checking a CloudEvent function's request before functions-framework converts it.

functions-framework answers envelopes it cannot convert with an HTML 400 or, for some shapes
(a top-level array, attributes as a list, nesting deep enough for ``RecursionError``), a 500
that makes Pub/Sub redeliver a message that can never succeed. ``check`` looks at the request
first and returns one of three verdicts:

- ``Pass``: a shape the framework converts (a Pub/Sub push envelope, a binary or structured
  CloudEvent, a legacy Pub/Sub background event); the body may be rewritten (a push message
  without ``data`` gets ``"data": ""``, so the source decides what an empty message means).
- ``Ack``: a push delivery that can never succeed (no ``messageId``, attributes that are not a
  string map, unencodable text, data of a binary CloudEvent that is not strict JSON): answered
  200 with the reason logged, so it does not loop until the dead-letter topic.
- ``Refuse``: anything else (``{}``, not JSON, an array, a CloudEvent without ``type``): a 4xx
  JSON error naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from khook_core import jsontext
from khook_core.errors import InvalidEventError

STRUCTURED_TYPE: Final = "application/cloudevents+json"
REQUIRED_ATTRIBUTES: Final = ("specversion", "id", "source", "type")
SPEC_VERSIONS: Final = frozenset({"1.0", "0.3"})
LEGACY_PUBSUB_TYPES: Final = frozenset(
    {"google.pubsub.topic.publish", "providers/cloud.pubsub/eventTypes/topic.publish"}
)
"""The background-event types functions-framework converts to a Pub/Sub CloudEvent."""
LEGACY_CONTEXT_KEYS: Final = frozenset({"eventId", "timestamp", "eventType", "resource"})


class Pass(NamedTuple):
    """Hand the request to functions-framework with this body (and, when the check parsed it,
    ``document``: the body as JSON, which the framework need not parse again). ``push``: the
    body is a Pub/Sub push envelope the framework converts as it is."""

    body: bytes
    document: Any = None
    push: bool = False


class Ack(NamedTuple):
    """A delivery that can never succeed: acknowledge it and log why."""

    reason: str
    field: str
    message_id: str


class Refuse(NamedTuple):
    """Not a delivery this function understands: answer ``error`` (a 4xx)."""

    error: InvalidEventError


Verdict = Pass | Ack | Refuse
"""Named tuples rather than dataclasses: this module loads on every cold start, and a frozen
dataclass costs a millisecond to define."""


def check(headers: Mapping[str, str], body: bytes) -> Verdict:
    """The verdict on one POST to a CloudEvent function (``headers`` with lower-case names)."""
    if "ce-specversion" in headers:
        return _check_binary(headers, body)
    structured = headers.get("content-type", "").split(";")[0].strip().lower() == STRUCTURED_TYPE
    try:
        if not body.strip():
            raise InvalidEventError(
                "the request body is empty; send a Pub/Sub push envelope or a CloudEvent",
                field="body",
            )
        document = jsontext.loads(body, field="body", check_text=False)
    except InvalidEventError as exc:
        return Refuse(exc)
    if structured:
        return _check_structured(document, body)
    if isinstance(document, dict) and document.get("specversion") is not None:
        # the CloudEvents SDK reads any JSON body with a specversion as a structured event
        return Refuse(
            InvalidEventError(
                f"a CloudEvent in the body needs Content-Type {STRUCTURED_TYPE}",
                field="content-type",
            )
        )
    if isinstance(document, dict) and "message" in document and "subscription" in document:
        return _check_push(document, body)
    if isinstance(document, dict) and "context" in document:
        return _check_legacy(document, body)
    return Refuse(
        InvalidEventError(
            'the body is neither a Pub/Sub push envelope ({"message": ..., "subscription": ...})'
            " nor a CloudEvent",
            field="body",
        )
    )


def _check_binary(headers: Mapping[str, str], body: bytes) -> Verdict:
    for name in REQUIRED_ATTRIBUTES:
        if not headers.get(f"ce-{name}"):
            return Refuse(
                InvalidEventError(
                    f"binary CloudEvent without the ce-{name} header", field=f"ce-{name}"
                )
            )
    if headers["ce-specversion"] not in SPEC_VERSIONS:
        return Refuse(
            InvalidEventError(
                f"unsupported CloudEvents specversion {headers['ce-specversion']!r}",
                field="ce-specversion",
            )
        )
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    if media.startswith("application/cloudevents"):
        return Refuse(
            InvalidEventError(
                f"a binary CloudEvent (ce- headers) cannot have Content-Type {media}",
                field="content-type",
            )
        )
    if body.strip() and (media == "application/json" or media.endswith("+json")):
        try:
            jsontext.loads(body, field="data")
        except InvalidEventError as exc:
            return Ack(exc.message, exc.field or "data", headers["ce-id"])
    return Pass(body)


def _check_structured(document: Any, body: bytes) -> Verdict:
    if not isinstance(document, dict):
        return Refuse(
            InvalidEventError("a structured CloudEvent must be a JSON object", field="body")
        )
    for name in REQUIRED_ATTRIBUTES:
        if not isinstance(document.get(name), str) or not document[name]:
            return Refuse(
                InvalidEventError(f"structured CloudEvent without a string '{name}'", field=name)
            )
    if document["specversion"] not in SPEC_VERSIONS:
        return Refuse(
            InvalidEventError(
                f"unsupported CloudEvents specversion {document['specversion']!r}",
                field="specversion",
            )
        )
    where = jsontext.unencodable_path(document) if jsontext.may_hold_surrogate(body) else None
    if where is not None:
        return Refuse(InvalidEventError(jsontext.unencodable_message(where), field=where))
    return Pass(body, document)


def _check_push(document: dict[str, Any], body: bytes) -> Verdict:
    """A Pub/Sub push envelope: what functions-framework needs to build the CloudEvent."""
    message = document["message"]
    if "context" in document:  # the framework would read it as a background event
        return Ack("a push envelope carries no 'context'", "context", "")
    if not isinstance(message, dict):
        return Ack("message must be a JSON object", "message", "")
    message_id = message.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        return Ack("the message has no messageId", "message.messageId", "")
    where = (
        jsontext.unencodable_path(message, "message") if jsontext.may_hold_surrogate(body) else None
    )
    if where is not None:
        shown = jsontext.printable(message_id)
        return Ack(jsontext.unencodable_message(where), where, shown)
    attributes = message.get("attributes")
    if attributes is not None and not (
        isinstance(attributes, dict) and all(isinstance(v, str) for v in attributes.values())
    ):
        return Ack("attributes must map strings to strings", "message.attributes", message_id)
    for name in ("data", "publishTime"):
        if name in message and not isinstance(message[name], str):
            return Ack(f"message.{name} must be a string", f"message.{name}", message_id)
    if "data" not in message:  # an attributes-only message: the source decides
        message["data"] = ""
        body = json.dumps(document).encode()
    return Pass(body, document, push=True)


def _check_legacy(document: dict[str, Any], body: bytes) -> Verdict:
    """A background event (``{"context": ..., "data": ...}``): only Pub/Sub's is converted."""
    context = document["context"]
    if set(document) - {"context", "data"}:
        return Refuse(
            InvalidEventError("a background event has only 'context' and 'data'", field="body")
        )
    if not isinstance(context, dict) or set(context) - LEGACY_CONTEXT_KEYS:
        return Refuse(
            InvalidEventError(
                f"context must be an object with {', '.join(sorted(LEGACY_CONTEXT_KEYS))}",
                field="context",
            )
        )
    event_type = context.get("eventType")
    if not isinstance(event_type, str) or event_type not in LEGACY_PUBSUB_TYPES:
        return Refuse(
            InvalidEventError(
                "only Pub/Sub background events are accepted "
                f"({', '.join(sorted(LEGACY_PUBSUB_TYPES))})",
                field="context.eventType",
            )
        )
    if not isinstance(context.get("eventId"), str) or not context["eventId"]:
        return Refuse(
            InvalidEventError("context.eventId must be a string", field="context.eventId")
        )
    resource = context.get("resource")
    if not isinstance(resource, str) and not (
        isinstance(resource, dict)
        and isinstance(resource.get("name"), str)
        and isinstance(resource.get("service", ""), str)
    ):
        return Refuse(
            InvalidEventError(
                'context.resource must be a name or {"name": ...}', field="context.resource"
            )
        )
    if not isinstance(document.get("data"), dict):
        return Refuse(InvalidEventError("data must be the Pub/Sub message object", field="data"))
    where = jsontext.unencodable_path(document) if jsontext.may_hold_surrogate(body) else None
    if where is not None:
        return Refuse(InvalidEventError(jsontext.unencodable_message(where), field=where))
    return Pass(body, document)
