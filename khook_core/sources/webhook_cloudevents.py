"""CloudEvents 1.0 over HTTP at the webhook source: structured, batched and binary mode.

Knative, Argo Events, Eventarc and Dapr deliver this way. The HTTP binding says which mode a
request is in:

- structured: ``Content-Type: application/cloudevents+json``, the body is one event object;
- batched: ``Content-Type: application/cloudevents-batch+json``, the body is an array of them;
- binary: the attributes are ``ce-*`` headers (``ce-specversion``, ``ce-id``, ``ce-source``,
  ``ce-type``, optional ``ce-subject``, ``ce-time``) and the body is the data (JSON here).

A structured event posted as plain ``application/json`` (no ``ce-*`` headers, a body with
``specversion``) is taken as structured too: some senders and ``curl`` users do that.

The CloudEvent ``type`` and ``source`` choose the event type through the mapping table: the
first ``webhook`` row whose ``cloudEventType`` glob (and optional ``cloudEventSource`` glob)
matches, else the row whose ``eventType`` equals the ``type``. An event no row maps is dropped
(``unmapped-cloudevent``). ``source`` + ``id`` identify an occurrence, as the specification
says, so a redelivery is a duplicate.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from khook_core import jsontext
from khook_core.errors import InvalidEventError
from khook_core.event import Event
from khook_core.mapping import MappingTable
from khook_core.sources.base import Dropped
from khook_core.sources.fieldmap import schema_error, severity_of, to_event, validate_generic
from khook_core.sources.jsonwords import json_type

STRUCTURED: Final = "application/cloudevents+json"
BATCH: Final = "application/cloudevents-batch+json"
CONTENT_TYPES: Final = (STRUCTURED, BATCH)
MAX_BATCH: Final = 100
"""Events in one batched request, as for generic batches."""
SPEC_VERSION: Final = "1.0"
_REQUIRED: Final = ("id", "source", "type")
_MESSAGE_KEYS: Final = ("message", "summary", "description", "title")
MAX_RESOURCE_NAME: Final = 253


def content_type(attributes: Mapping[str, str]) -> str:
    return attributes.get("content-type", "").split(";", 1)[0].strip().lower()


def is_cloudevent(attributes: Mapping[str, str]) -> bool:
    """Structured or batched content type, or binary mode's ``ce-specversion`` header."""
    return content_type(attributes) in CONTENT_TYPES or "ce-specversion" in attributes


def envelopes(raw: Any, attributes: Mapping[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """Each CloudEvent of the request as ``(where, attributes-and-data)``."""
    mode = content_type(attributes)
    if mode == BATCH:
        if not isinstance(raw, list):
            raise schema_error(
                f"(body): a CloudEvents batch is an array, got {json_type(raw)}", "(body)"
            )
        if not raw:
            raise Dropped("empty-batch")
        if len(raw) > MAX_BATCH:
            raise schema_error(
                f"(body): at most {MAX_BATCH} events per batch, got {len(raw)}", "(body)"
            )
        items = [(f"[{i}].", item) for i, item in enumerate(raw)]
    elif mode == STRUCTURED or (
        "ce-specversion" not in attributes and isinstance(raw, dict) and "specversion" in raw
    ):
        items = [("", raw)]  # structured, or a structured body sent as application/json
    else:
        binary = {k[3:]: v for k, v in attributes.items() if k.startswith("ce-")}
        binary["data"] = raw
        return [("ce-", binary)]
    for where, item in items:
        if not isinstance(item, dict):
            at = where.rstrip(".") or "(body)"
            raise schema_error(f"{at}: expected a CloudEvent object, got {json_type(item)}", at)
    return items


def _text(envelope: Mapping[str, Any], key: str, where: str, *, required: bool) -> str:
    value = envelope.get(key)
    if value is None or value == "":
        if required:
            raise schema_error(
                f"{where}{key}: required CloudEvents attribute is missing", f"{where}{key}"
            )
        return ""
    if not isinstance(value, str):
        raise schema_error(
            f"{where}{key}: expected a string, got {json_type(value)}", f"{where}{key}"
        )
    return value


def _data(envelope: Mapping[str, Any], where: str) -> Any:
    if "data_base64" not in envelope:
        return envelope.get("data")
    encoded = envelope["data_base64"]
    try:
        if not isinstance(encoded, str):
            raise ValueError
        text = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise schema_error(
            f"{where}data_base64: expected base64 of UTF-8 text", f"{where}data_base64"
        ) from None
    try:
        return jsontext.loads(text, field=f"{where}data_base64")
    except jsontext.JsonLimitError:
        raise
    except InvalidEventError:  # not JSON: the data is text
        return text


def _resource(data: Any, ce_source: str, subject: str) -> dict[str, str]:
    """A Kubernetes object in the data (Knative ApiServerSource) names itself; else the subject."""
    if isinstance(data, dict) and isinstance(data.get("metadata"), dict):
        meta = data["metadata"]
        kind, name = data.get("kind"), meta.get("name")
        if isinstance(kind, str) and isinstance(name, str) and name:
            namespace = meta.get("namespace")
            return {
                "kind": kind[:63],
                "name": name[:MAX_RESOURCE_NAME],
                "namespace": namespace[:63] if isinstance(namespace, str) else "",
            }
    return {"kind": "CloudEvent", "name": (subject or ce_source)[:MAX_RESOURCE_NAME]}


def _message(data: Any, ce_type: str, ce_source: str, subject: str) -> str:
    if isinstance(data, dict):
        for key in _MESSAGE_KEYS:
            if isinstance(data.get(key), str) and data[key]:
                return str(data[key])
    if isinstance(data, str) and data:
        return data
    return f"CloudEvent {ce_type} from {ce_source}" + (f" about {subject}" if subject else "")


def normalize(
    raw: Any,
    attributes: Mapping[str, str],
    *,
    source: str,
    endpoint: str,
    mapping: MappingTable,
    now: datetime,
    raw_ref: str,
) -> list[Event]:
    """The events of one CloudEvents request (see the module docstring)."""
    events: list[Event] = []
    for where, envelope in envelopes(raw, attributes):
        version = _text(envelope, "specversion", where, required=True)
        if version != SPEC_VERSION:
            raise schema_error(
                f"{where}specversion: {version!r} is not supported; send {SPEC_VERSION!r}",
                f"{where}specversion",
            )
        ce_id, ce_source, ce_type = (_text(envelope, k, where, required=True) for k in _REQUIRED)
        subject = _text(envelope, "subject", where, required=False)
        entry = mapping.for_cloud_event(source, ce_type, ce_source)
        if entry is None:
            continue
        data = _data(envelope, where)
        severity = severity_of(data.get("severity")) if isinstance(data, dict) else None
        generic = validate_generic(
            {
                "type": entry.event_type,
                "resource": _resource(data, ce_source, subject),
                "reason": ce_type[:1024],
                "message": _message(data, ce_type, ce_source, subject),
                "severity": severity,
                "timestamp": _text(envelope, "time", where, required=False) or None,
                "id": f"{ce_source}#{ce_id}"[:512],
                "tags": {"ce_type": ce_type, "ce_source": ce_source},
                "metadata": {
                    "cloudevent": {
                        k: v for k, v in envelope.items() if k not in ("data", "data_base64")
                    },
                    "data": data,
                },
            },
            where,
        )
        events.append(
            to_event(
                generic,
                source=source,
                now=now,
                raw_ref=raw_ref,
                id_parts=(endpoint, "cloudevent", ce_source, ce_id),
                metadata={"endpoint": endpoint},
            )
        )
    if not events:
        raise Dropped("unmapped-cloudevent")
    return events
