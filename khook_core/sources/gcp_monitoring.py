"""Cloud Monitoring incidents from a Pub/Sub notification channel (schema ``version: "1.2"``).

Each notification is one incident at one state: ``open`` fires, ``closed`` resolves. The
monitored resource (``incident.resource.type`` and ``.labels``) becomes the event's resource,
so a ``k8s_container`` incident names its namespace, pod and container like a Kubernetes event
would. The owning workload is not on the Event yet: it travels in ``metadata.workload``
(``kind``, ``name``, ``namespace``, ``container``, ``cluster``, ``location``) and as the
``cluster`` / ``container`` tags, shaped so a first-class workload field can take it over.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from khook_core.event import Event, Severity
from khook_core.sources.fieldmap import (
    object_field,
    schema_error,
    time_of,
    to_event,
    validate_generic,
)
from khook_core.sources.jsonwords import json_type

EVENT_TYPE: Final = "monitoring-incident"
SUPPORTED_VERSIONS: Final = ("1.2",)
_SEVERITY: Final = {
    "critical": Severity.CRITICAL,
    "error": Severity.ERROR,
    "warning": Severity.WARNING,
}
_STATUS: Final = {"open": "firing", "closed": "resolved"}
MAX_NAME: Final = 253


def _str(obj: Mapping[str, Any], key: str, field: str, *, required: bool = False) -> str:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise schema_error(f"{field}: required", field)
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise schema_error(f"{field}: expected a string, got {json_type(value)}", field)
    return str(value)


def _labels(resource: Mapping[str, Any]) -> dict[str, str]:
    labels = object_field(resource.get("labels"), "incident.resource.labels")
    return {str(k): str(v) for k, v in labels.items() if isinstance(v, str | int | float)}


def resource_and_workload(
    resource_type: str,
    labels: Mapping[str, str],
    display_name: str,
) -> tuple[dict[str, str], dict[str, str]]:
    """The event resource and the workload fields of a monitored resource."""
    namespace = labels.get("namespace_name", "")
    cluster = {"cluster": labels.get("cluster_name", ""), "location": labels.get("location", "")}
    if resource_type in ("k8s_container", "k8s_pod") and labels.get("pod_name"):
        workload = {
            "kind": "Pod",
            "name": labels["pod_name"],
            "namespace": namespace,
            "container": labels.get("container_name", ""),
            **cluster,
        }
        return {"kind": "Pod", "name": labels["pod_name"], "namespace": namespace}, workload
    if resource_type == "k8s_node" and labels.get("node_name"):
        return {"kind": "Node", "name": labels["node_name"]}, {
            "kind": "Node",
            "name": labels["node_name"],
            **cluster,
        }
    if resource_type == "k8s_cluster" and labels.get("cluster_name"):
        return {"kind": "Cluster", "name": labels["cluster_name"]}, cluster
    if resource_type == "cloud_run_revision" and labels.get("service_name"):
        return {"kind": "CloudRunService", "name": labels["service_name"]}, {
            "kind": "CloudRunService",
            "name": labels["service_name"],
            "location": labels.get("location", ""),
        }
    name = display_name or next((v for v in labels.values() if v), "") or resource_type
    return {"kind": resource_type or "MonitoredResource", "name": name}, {}


def normalize(body: Mapping[str, Any], *, source: str, now: datetime, raw_ref: str) -> Event:
    """One incident notification → a ``monitoring-incident`` event."""
    version = _str(body, "version", "version", required=True)
    if version not in SUPPORTED_VERSIONS:
        raise schema_error(
            f"version: {version!r} is not supported; use the notification "
            f"channel's schema {', '.join(SUPPORTED_VERSIONS)}",
            "version",
        )
    incident = object_field(body.get("incident"), "incident", required=True)
    incident_id = _str(incident, "incident_id", "incident.incident_id", required=True)
    state = _str(incident, "state", "incident.state", required=True).lower()
    if state not in _STATUS:
        raise schema_error(
            f"incident.state: {state!r} is neither open nor closed", "incident.state"
        )
    resource = object_field(incident.get("resource"), "incident.resource")
    resource_type = _str(resource, "type", "incident.resource.type")
    labels = _labels(resource)
    display = _str(incident, "resource_display_name", "incident.resource_display_name")
    event_resource, workload = resource_and_workload(resource_type, labels, display)
    event_resource["name"] = event_resource["name"][:MAX_NAME]
    metric = object_field(incident.get("metric"), "incident.metric")
    policy = _str(incident, "policy_name", "incident.policy_name")
    condition = _str(incident, "condition_name", "incident.condition_name")
    summary = _str(incident, "summary", "incident.summary")
    severity_text = _str(incident, "severity", "incident.severity").lower()
    started = time_of(incident.get("started_at"), "incident.started_at")
    ended = time_of(incident.get("ended_at"), "incident.ended_at")
    tags = {
        "resource_type": resource_type,
        "policy": policy,
        "condition": condition,
        "metric": _str(metric, "type", "incident.metric.type"),
        **{
            k: v
            for k, v in (
                ("cluster", workload.get("cluster", "")),
                ("container", workload.get("container", "")),
            )
            if v
        },
    }
    policy_labels = object_field(incident.get("policy_user_labels"), "incident.policy_user_labels")
    tags |= {
        f"policy_label_{k}": str(v)
        for k, v in policy_labels.items()
        if isinstance(v, str | int | float)
    }
    generic = validate_generic(
        {
            "type": EVENT_TYPE,
            "severity": _SEVERITY.get(severity_text),
            "status": _STATUS[state],
            "resource": event_resource,
            "reason": (condition or policy or "MonitoringIncident")[:1024],
            "message": summary or f"Cloud Monitoring incident {incident_id} is {state}",
            "timestamp": ended if state == "closed" and ended else started,
            "firstTimestamp": started,
            "id": incident_id,
            "groupKey": policy,
            "tags": {k: v for k, v in tags.items() if v},
            "metadata": {
                "url": _str(incident, "url", "incident.url"),
                "incident_id": incident_id,
                "project": _str(incident, "scoping_project_id", "incident.scoping_project_id"),
                "observed_value": _str(incident, "observed_value", "incident.observed_value"),
                "threshold_value": _str(incident, "threshold_value", "incident.threshold_value"),
                "resource_labels": labels,
                "workload": workload,
            },
        }
    )
    return to_event(
        generic,
        source=source,
        now=now,
        raw_ref=raw_ref,
        id_parts=("monitoring", incident_id, state),
    )


def looks_like(body: Any) -> bool:
    return isinstance(body, dict) and "incident" in body
