"""The ``alertmanager`` source: Prometheus Alertmanager webhook payloads (``version: "4"``).

Alertmanager posts one body per alert *group* and re-sends it on every group change and repeat
interval, and an HA pair sends each body twice. So one body becomes one Event per alert, and the
alert's identity (``fingerprint`` + ``startsAt``) is the Event's ``occurrence``: every re-send and
HA duplicate of one firing lands on the same dedup key and fires once per dedup window. A
``resolved`` alert carries the same key and makes the pipeline release the claim, so a later
re-fire dispatches again. Grafana's compatible webhook (extra ``orgId``, ``dashboardURL`` …) is
accepted as well.
"""

import hashlib
import logging
from collections.abc import Mapping
from typing import Any, ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from khook_core import workloads
from khook_core.event import Event, Resource, Severity, Workload, stable_id
from khook_core.sources.base import DEFAULT_MAX_BODY_BYTES, Dropped, SourceContext
from khook_core.sources.fieldmap import (
    KEBAB_CASE,
    MAX_TYPE_CHARS,
    kebab_case,
    object_field,
    schema_error,
    severity_of,
    time_of,
)
from khook_core.sources.jsonwords import json_type

logger = logging.getLogger(__name__)

DEFAULT_TYPE_LABELS: Final = ("khook_event_type", "alertname")
"""An explicit ``khook_event_type`` label wins over the alert name."""
DEFAULT_RESOURCE_LABELS: Final = (
    "pod",
    "deployment",
    "statefulset",
    "daemonset",
    "job_name",
    "cronjob",
    "node",
    "service",
    "persistentvolumeclaim",
    "instance",
)
"""The first of these labels present names the resource; its label name is the kind."""
_KINDS: Final = {
    "pod": "Pod",
    "deployment": "Deployment",
    "statefulset": "StatefulSet",
    "daemonset": "DaemonSet",
    "job_name": "Job",
    "cronjob": "CronJob",
    "node": "Node",
    "service": "Service",
    "persistentvolumeclaim": "PersistentVolumeClaim",
    "instance": "Instance",
}
_GRAFANA_KEYS: Final = ("silenceURL", "dashboardURL", "panelURL", "values", "valueString", "orgId")


DEFAULT_WORKLOAD_KINDS: Final = {
    "deployment": "Deployment",
    "statefulset": "StatefulSet",
    "daemonset": "DaemonSet",
    "cronjob": "CronJob",
    "job_name": "Job",
    "pod": "Pod",
    "service": "Service",
}
"""kube-state-metrics label names, most specific workload first. ``job_name`` names a Job:
Prometheus keeps ``job`` for the scrape job. A ``Pod`` label gives its workload by the name
heuristic (marked inferred)."""


class WorkloadLabels(BaseModel):
    """Which alert labels name the workload (kube-state-metrics conventions by default)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    namespace: str = "namespace"
    cluster: str = "cluster"
    kinds: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_WORKLOAD_KINDS), min_length=1
    )
    """label → workload kind, tried in order; the first label set names the workload."""


class AlertmanagerConfig(BaseModel):
    """Settings of the alertmanager source (``plugins.yaml`` → ``config:``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type_labels: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TYPE_LABELS), alias="typeLabels", min_length=1
    )
    """Labels tried in order for the event type; the value is converted to kebab-case."""
    fallback_event_type: str | None = Field(
        default=None, alias="fallbackEventType", pattern=KEBAB_CASE.pattern
    )
    """Used when the derived type has no mapping row (e.g. ``prometheus-alert``), so one hook
    can catch every alert; without it such alerts are dropped as ``unmapped``."""
    severity_label: str = Field(default="severity", alias="severityLabel")
    resource_labels: list[str] = Field(
        default_factory=lambda: list(DEFAULT_RESOURCE_LABELS), alias="resourceLabels"
    )
    max_body_bytes: int = Field(
        default=DEFAULT_MAX_BODY_BYTES, gt=0, le=32 * 1024 * 1024, alias="maxBodyBytes"
    )
    workload_labels: WorkloadLabels = Field(default_factory=WorkloadLabels, alias="workloadLabels")
    """The labels naming an alert's workload, for every receiver without its own map."""
    receiver_workload_labels: dict[str, WorkloadLabels] = Field(
        default_factory=dict, alias="receiverWorkloadLabels"
    )
    """Per Alertmanager receiver (the body's ``receiver``), a label map of its own."""

    @field_validator("type_labels", "resource_labels")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        for label in value:
            if not label:
                raise ValueError("label names must not be empty")
        return value


def _labels(value: Any, field: str) -> dict[str, str]:
    labels = object_field(value, field)
    for key, item in labels.items():
        if not isinstance(item, str):
            raise schema_error(
                f"{field}.{key}: expected a string, got {json_type(item)}", f"{field}.{key}"
            )
    return labels


def _text(obj: Mapping[str, Any], key: str, field: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise schema_error(f"{field}: expected a string, got {json_type(value)}", field)
    return value


def fingerprint_of(labels: Mapping[str, str]) -> str:
    """A stand-in for Alertmanager's fingerprint (a hash of the label set) when one is missing."""
    canonical = "\x1f".join(f"{k}\x1e{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:16]


class AlertmanagerSource:
    """Normalises one Alertmanager webhook body into one Event per alert."""

    name: ClassVar[str] = "alertmanager"
    version: ClassVar[str] = "1.0.0"
    event_types: ClassVar[tuple[str, ...]] = ()
    """Open-ended: the types are alert names; the mapping table declares the enabled ones."""
    config_model: ClassVar[type[BaseModel] | None] = AlertmanagerConfig

    def __init__(self, config: BaseModel | None, context: SourceContext) -> None:
        self.config = config if isinstance(config, AlertmanagerConfig) else AlertmanagerConfig()
        self.context = context

    def http_options(self, path: str) -> dict[str, Any]:
        """HTTP settings read by ``khook_core.transport.http``: a bearer token, no signatures."""
        return {"auth": "bearer", "max_body_bytes": self.config.max_body_bytes}

    def normalize(self, raw: Any, attributes: Mapping[str, str]) -> list[Event]:
        if not isinstance(raw, dict):
            raise schema_error(
                f"(body): expected an object (an Alertmanager webhook body), got {json_type(raw)}",
                "(body)",
            )
        alerts = raw.get("alerts")
        if not isinstance(alerts, list):
            raise schema_error("alerts: required list is missing or not a list", "alerts")
        if not alerts:
            raise Dropped("no-alerts")
        group = {
            "groupKey": _text(raw, "groupKey", "groupKey"),
            "receiver": _text(raw, "receiver", "receiver"),
            "externalURL": _text(raw, "externalURL", "externalURL"),
            "version": _text(raw, "version", "version"),
        }
        common_labels = _labels(raw.get("commonLabels"), "commonLabels")
        common_annotations = _labels(raw.get("commonAnnotations"), "commonAnnotations")
        truncated = raw.get("truncatedAlerts")
        if isinstance(truncated, int) and not isinstance(truncated, bool) and truncated > 0:
            logger.warning(
                "alert group %s arrived with %d alerts truncated (max_alerts)",
                group["groupKey"],
                truncated,
            )
        raw_ref = f"alertmanager:{attributes.get('http.request_id', '')}".rstrip(":")
        return [
            self._alert(alert, index, group, common_labels, common_annotations, raw_ref)
            for index, alert in enumerate(alerts)
        ]

    def _alert(
        self,
        alert: Any,
        index: int,
        group: Mapping[str, str],
        common_labels: Mapping[str, str],
        common_annotations: Mapping[str, str],
        raw_ref: str,
    ) -> Event:
        where = f"alerts[{index}]"
        if not isinstance(alert, dict):
            raise schema_error(f"{where}: expected an object, got {json_type(alert)}", where)
        labels = {**common_labels, **_labels(alert.get("labels"), f"{where}.labels")}
        annotations = {
            **common_annotations,
            **_labels(alert.get("annotations"), f"{where}.annotations"),
        }
        status = self._status(alert, where)
        starts_at = time_of(alert.get("startsAt"), f"{where}.startsAt")
        if starts_at is None:
            raise schema_error(
                f"{where}.startsAt: required timestamp is missing", f"{where}.startsAt"
            )
        ends_at = time_of(alert.get("endsAt"), f"{where}.endsAt")
        fingerprint = _text(alert, "fingerprint", f"{where}.fingerprint") or fingerprint_of(labels)
        event_type = self._event_type(labels, where)
        alertname = labels.get("alertname", "")
        resource = self._resource(labels)
        last = ends_at if status == "resolved" and ends_at is not None else starts_at
        metadata: dict[str, Any] = {
            **{k: v for k, v in group.items() if v},
            "fingerprint": fingerprint,
            "startsAt": starts_at.isoformat(),
            "annotations": annotations,
            "generatorURL": _text(alert, "generatorURL", f"{where}.generatorURL"),
        }
        if ends_at is not None:
            metadata["endsAt"] = ends_at.isoformat()
        metadata.update({k: alert[k] for k in _GRAFANA_KEYS if alert.get(k) not in (None, "", {})})
        occurrence = f"{fingerprint}@{starts_at.isoformat()}"
        return Event(
            id=stable_id(self.name, fingerprint, status, starts_at.isoformat()),
            source=self.name,
            type=event_type,
            severity=severity_of(labels.get(self.config.severity_label)) or Severity.INFO,
            resource=resource,
            workload=self._workload(labels, group.get("receiver", "")),
            reason=alertname,
            message=self._message(annotations, alertname),
            timestamp=last,
            first_timestamp=starts_at,
            status=status,
            occurrence=occurrence,
            group_key=group["groupKey"],
            tags=labels,
            metadata=metadata,
            raw_ref=raw_ref,
        )

    @staticmethod
    def _status(alert: Mapping[str, Any], where: str) -> Literal["firing", "resolved"]:
        status = alert.get("status")
        if status == "firing":
            return "firing"
        if status == "resolved":
            return "resolved"
        raise schema_error(
            f"{where}.status must be 'firing' or 'resolved', got {status!r}", f"{where}.status"
        )

    def _event_type(self, labels: Mapping[str, str], where: str) -> str:
        for label in self.config.type_labels:
            value = labels.get(label)
            if value:
                event_type = kebab_case(value)[:MAX_TYPE_CHARS].strip("-")
                if not event_type:
                    raise schema_error(
                        f"{where}.labels.{label}: {value!r} gives no event type "
                        "(needs letters or digits)",
                        f"{where}.labels.{label}",
                    )
                break
        else:
            tried = ", ".join(self.config.type_labels)
            raise schema_error(
                f"{where}.labels: none of the type labels ({tried}) is set",
                f"{where}.labels.{self.config.type_labels[-1]}",
            )
        fallback = self.config.fallback_event_type
        if fallback and self.context.mapping.get(self.name, event_type) is None:
            return fallback
        return event_type

    def _resource(self, labels: Mapping[str, str]) -> Resource:
        for label in self.config.resource_labels:
            if labels.get(label):
                return Resource(
                    kind=_KINDS.get(label, label),
                    name=labels[label],
                    namespace=labels.get("namespace", ""),
                )
        return Resource(
            kind="Alert", name=labels.get("alertname", ""), namespace=labels.get("namespace", "")
        )

    def _workload(self, labels: Mapping[str, str], receiver: str) -> Workload:
        names = self.config.receiver_workload_labels.get(receiver, self.config.workload_labels)
        namespace = labels.get(names.namespace, "")
        cluster = labels.get(names.cluster, "")
        for label, kind in names.kinds.items():
            value = labels.get(label)
            if value:
                return (
                    workloads.infer(namespace, kind, value, cluster)
                    if kind == "Pod"
                    else (Workload(cluster=cluster, namespace=namespace, kind=kind, name=value))
                )
        return Workload()

    @staticmethod
    def _message(annotations: Mapping[str, str], alertname: str) -> str:
        parts = [annotations.get(k, "").strip() for k in ("summary", "description", "message")]
        text = "\n".join(dict.fromkeys(p for p in parts if p))
        return text or alertname
