"""The webhook source's ``grafana`` preset: Grafana Alerting's webhook contact point.

Grafana posts one JSON body per notification: the Alertmanager-style group (``alerts``,
``groupKey``, ``commonLabels``, ``externalURL``, ``version: "1"``) plus Grafana's own fields
(``orgId``, ``title``, ``state``, ``message``; per alert ``silenceURL``, ``dashboardURL``,
``panelURL``, ``values``, ``valueString``). Each alert becomes one event:

- type: the ``khook_event_type`` label, else ``grafana-alert`` (one mapping row covers every
  rule; hooks narrow with ``matchTags`` on ``alertname`` or ``grafana_folder``);
- status ``firing`` / ``resolved``; severity from the ``severity`` label;
- occurrence ``fingerprint@startsAt``, so a re-notification of the same alert is a duplicate
  and a resolve resolves it;
- resource: the ``namespace`` and ``pod`` labels when present, else ``instance``, else the rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from khook_core.event import Event
from khook_core.sources.base import Dropped
from khook_core.sources.fieldmap import (
    KEBAB_CASE,
    schema_error,
    severity_of,
    time_of,
    to_event,
    validate_generic,
)
from khook_core.sources.jsonwords import json_type

EVENT_TYPE: Final = "grafana-alert"
MAX_ALERTS: Final = 100
_URL_KEYS: Final = ("generatorURL", "silenceURL", "dashboardURL", "panelURL")


def _strings(value: Any, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise schema_error(f"{field}: expected an object of strings, got {json_type(value)}", field)
    return {str(k): v for k, v in value.items()}


def _resource(labels: Mapping[str, str]) -> dict[str, str]:
    namespace = labels.get("namespace", "")
    for label, kind in (("pod", "Pod"), ("deployment", "Deployment"), ("node", "Node")):
        if labels.get(label):
            return {"kind": kind, "name": labels[label][:253], "namespace": namespace}
    if labels.get("instance"):
        return {"kind": "Instance", "name": labels["instance"][:253], "namespace": namespace}
    return {
        "kind": "GrafanaAlertRule",
        "name": labels.get("alertname", "")[:253],
        "namespace": namespace,
    }


def normalize(
    raw: Any,
    *,
    source: str,
    endpoint: str,
    now: datetime,
    raw_ref: str,
) -> list[Event]:
    """The events of one Grafana notification."""
    if not isinstance(raw, dict):
        raise schema_error(
            f"(body): expected a Grafana notification object, got {json_type(raw)}", "(body)"
        )
    alerts = raw.get("alerts")
    if not isinstance(alerts, list):
        raise schema_error("alerts: required array is missing", "alerts")
    if not alerts:
        raise Dropped("empty-batch")
    if len(alerts) > MAX_ALERTS:
        raise schema_error(f"alerts: at most {MAX_ALERTS} per notification", "alerts")
    group_key = raw.get("groupKey")
    group_key = group_key if isinstance(group_key, str) else ""
    events = []
    for index, alert in enumerate(alerts):
        where = f"alerts[{index}]"
        if not isinstance(alert, dict):
            raise schema_error(f"{where}: expected an object, got {json_type(alert)}", where)
        labels = _strings(alert.get("labels"), f"{where}.labels")
        annotations = _strings(alert.get("annotations"), f"{where}.annotations")
        status = alert.get("status")
        if status not in ("firing", "resolved"):
            raise schema_error(
                f"{where}.status: expected firing or resolved, got {status!r}", f"{where}.status"
            )
        starts_at = time_of(alert.get("startsAt"), f"{where}.startsAt")
        if starts_at is None:
            raise schema_error(f"{where}.startsAt: required", f"{where}.startsAt")
        fingerprint = alert.get("fingerprint")
        if not isinstance(fingerprint, str) or not fingerprint:
            raise schema_error(f"{where}.fingerprint: required", f"{where}.fingerprint")
        ends_at = time_of(alert.get("endsAt"), f"{where}.endsAt")
        event_type = labels.get("khook_event_type") or EVENT_TYPE
        if not KEBAB_CASE.match(event_type):
            raise schema_error(
                f"{where}.labels.khook_event_type: {event_type!r} is not kebab-case",
                f"{where}.labels.khook_event_type",
            )
        alertname = labels.get("alertname", "")
        message = (
            annotations.get("summary")
            or annotations.get("description")
            or f"Grafana alert {alertname} is {status}"
        )
        occurrence = f"{fingerprint}@{starts_at.isoformat()}"
        resolved = status == "resolved" and ends_at is not None and ends_at.year > 1
        generic = validate_generic(
            {
                "type": event_type,
                "status": status,
                "severity": severity_of(labels.get("severity")),
                "resource": _resource(labels),
                "reason": alertname[:1024],
                "message": message,
                "timestamp": ends_at if resolved else starts_at,
                "firstTimestamp": starts_at,
                "id": occurrence,
                "groupKey": group_key[:1024],
                "tags": {k: v for k, v in labels.items() if k != "khook_event_type"},
                "metadata": {
                    "annotations": annotations,
                    "values": alert.get("values"),
                    **{k: alert[k] for k in _URL_KEYS if isinstance(alert.get(k), str)},
                },
            },
            f"{where}.",
        )
        events.append(
            to_event(
                generic,
                source=source,
                now=now,
                raw_ref=raw_ref,
                id_parts=(endpoint, "grafana", occurrence, status),
                metadata={"endpoint": endpoint},
            )
        )
    return events
