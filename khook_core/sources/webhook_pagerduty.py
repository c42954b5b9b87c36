"""The webhook source's ``pagerduty`` preset: PagerDuty v3 webhook subscriptions.

PagerDuty posts ``{"event": {id, event_type, resource_type, occurred_at, agent, data}}`` with
the incident in ``data`` (``id``, ``number``, ``title``, ``status``, ``urgency``, ``priority``,
``service``, ``html_url``, ``incident_key``), signed in ``X-PagerDuty-Signature`` (checked by
the HTTP transport with ``auth: pagerduty``).

``incident.triggered`` and ``incident.reopened`` fire a ``pagerduty-incident`` event and
``incident.resolved`` resolves it; the incident id is the occurrence, so the same incident
reaches an agent once however often PagerDuty retries. Every other event type
(``incident.acknowledged``, ``incident.annotated``, ``pagey.ping``, ...) is dropped with its
type as the reason (``dropped:pagerduty-incident-acknowledged``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from khook_core.event import Event
from khook_core.sources.base import Dropped
from khook_core.sources.fieldmap import (
    object_field,
    scalar_text,
    schema_error,
    to_event,
    validate_generic,
)
from khook_core.sources.jsonwords import json_type

EVENT_TYPE: Final = "pagerduty-incident"
_STATUS: Final = {
    "incident.triggered": "firing",
    "incident.reopened": "firing",
    "incident.resolved": "resolved",
}
_URGENCY: Final = {"high": "error", "low": "warning"}


def _summary(obj: Mapping[str, Any], key: str, field: str) -> str:
    return scalar_text(object_field(obj.get(key), field), "summary", f"{field}.summary")


def normalize(raw: Any, *, source: str, endpoint: str, now: datetime, raw_ref: str) -> Event:
    """One PagerDuty v3 webhook → a ``pagerduty-incident`` event, or ``Dropped``."""
    if not isinstance(raw, dict):
        raise schema_error(
            f"(body): expected a PagerDuty webhook object, got {json_type(raw)}", "(body)"
        )
    event = object_field(raw.get("event"), "event", required=True)
    event_type = scalar_text(event, "event_type", "event.event_type")
    if not event_type:
        raise schema_error("event.event_type: required", "event.event_type")
    if event_type not in _STATUS:
        raise Dropped("pagerduty-" + event_type.replace(".", "-").replace("_", "-"))
    data = object_field(event.get("data"), "event.data", required=True)
    incident_id = scalar_text(data, "id", "event.data.id")
    if not incident_id:
        raise schema_error("event.data.id: required (the incident id)", "event.data.id")
    title = scalar_text(data, "title", "event.data.title")
    service = _summary(data, "service", "event.data.service")
    priority = _summary(data, "priority", "event.data.priority")
    urgency = scalar_text(data, "urgency", "event.data.urgency")
    number = scalar_text(data, "number", "event.data.number")
    severity = "critical" if priority.upper() == "P1" else _URGENCY.get(urgency)
    occurred = event.get("occurred_at") or None
    generic = validate_generic(
        {
            "type": EVENT_TYPE,
            "status": _STATUS[event_type],
            "severity": severity,
            "resource": {"kind": "PagerDutyService", "name": (service or "unknown-service")[:253]},
            "reason": event_type,
            "id": incident_id,
            "message": f"PagerDuty incident #{number or incident_id} on {service or '?'}: "
            f"{title or '(no title)'}",
            "timestamp": occurred,
            "firstTimestamp": data.get("created_at") or None,
            "groupKey": service[:1024],
            "tags": {
                k: v
                for k, v in {
                    "service": service,
                    "urgency": urgency,
                    "priority": priority,
                    "incident_number": number,
                }.items()
                if v
            },
            "metadata": {
                "url": scalar_text(data, "html_url", "event.data.html_url"),
                "incident_key": scalar_text(data, "incident_key", "event.data.incident_key"),
                "event_id": scalar_text(event, "id", "event.id"),
                "agent": _summary(event, "agent", "event.agent"),
            },
        }
    )
    return to_event(
        generic,
        source=source,
        now=now,
        raw_ref=raw_ref,
        id_parts=(endpoint, "pagerduty", incident_id, _STATUS[event_type]),
        metadata={"endpoint": endpoint},
    )
