"""The ``kubernetes`` source: core/v1 and events.k8s.io/v1 Event objects.

Implements khook's reason table (first match wins) plus ``node-not-ready`` (khook PR #12), with
one deliberate change: freshness is judged on the *latest* of ``series.lastObservedTime``,
``eventTime``, ``lastTimestamp``/``deprecatedLastTimestamp`` and ``creationTimestamp``, so a
legacy Event whose ``count`` keeps growing keeps firing (khook judged it stale after 15 minutes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from khook_core.errors import InvalidEventError
from khook_core.event import Event, Resource, Severity, stable_id
from khook_core.sources.base import Dropped, SourceContext, require_mapping
from khook_core.timeparse import parse_time

DEFAULT_FRESHNESS = timedelta(minutes=15)
"""khook's staleness window; configurable through plugins.yaml ``freshnessMinutes``."""

EVENT_TYPES = ("pod-restart", "oom-kill", "pod-pending", "probe-failed", "node-not-ready")


class KubernetesConfig(BaseModel):
    """Settings of the kubernetes source (``plugins.yaml`` → ``config:``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    freshness_minutes: float = Field(
        default=DEFAULT_FRESHNESS.total_seconds() / 60, gt=0, alias="freshnessMinutes"
    )
    """Events whose last occurrence is older than this are dropped as ``stale``."""
    namespace: str | None = None
    """Accepted for compatibility with khook's plugins.yaml; the forwarder chooses namespaces."""


def classify_reason(reason: str, message: str, event_type: str) -> str | None:
    """khook's reason table for Pod events, row by row (inputs compared lower-cased)."""
    reason, message, event_type = reason.lower(), message.lower(), event_type.lower()
    if reason in ("oomkilling", "oomkilled"):
        return "oom-kill"
    if reason in ("killing", "killed"):
        return "oom-kill" if ("oom" in message or "out of memory" in message) else "pod-restart"
    if reason == "backoff":
        return "pod-restart"
    if reason == "failed" and "container" in message:
        return "pod-restart"
    if reason == "failedscheduling":
        return "pod-pending"
    if reason == "pending" or (event_type == "warning" and "pending" in message):
        return "pod-pending"
    if reason == "unhealthy":
        probes = ("liveness", "readiness", "startup")
        return "probe-failed" if any(p in message for p in probes) else None
    if "probe" in reason and event_type == "warning":
        return "probe-failed"
    return None  # includes row 9: started/created are explicitly nothing


# Pod name → owning workload, for coalescing: Deployment pods end in -<rs hash>-<5>,
# DaemonSet/Job pods in -<5>, StatefulSet pods in -<ordinal>. Generated suffixes use
# Kubernetes' vowel-free alphabet, which keeps words such as "exporter" out of the match.
_SAFE = "[bcdfghjklmnpqrstvwxz2456789]"
_OWNER_PATTERNS = (
    re.compile(rf"^(?P<owner>.+)-{_SAFE}{{6,10}}-{_SAFE}{{5}}$"),
    re.compile(rf"^(?P<owner>.+)-{_SAFE}{{5}}$"),
    re.compile(r"^(?P<owner>.+)-\d+$"),
)


def owner_of(pod_name: str) -> str:
    for pattern in _OWNER_PATTERNS:
        match = pattern.match(pod_name)
        if match:
            return match["owner"]
    return pod_name


def _str_field(obj: Mapping[str, Any], key: str, path: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidEventError(f"{path} must be a string", field=path)
    return value


def _int_field(obj: Mapping[str, Any], key: str, path: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidEventError(f"{path} must be an integer", field=path)
    return value


def _obj_field(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidEventError(f"{path} must be an object", field=path)
    return value


class KubernetesSource:
    """Normalises one Kubernetes Event object into at most one khook Event."""

    name: ClassVar[str] = "kubernetes"
    version: ClassVar[str] = "1.0.0"
    event_types: ClassVar[tuple[str, ...]] = EVENT_TYPES
    config_model: ClassVar[type[BaseModel] | None] = KubernetesConfig

    def __init__(self, config: BaseModel | None, context: SourceContext) -> None:
        cfg = config if isinstance(config, KubernetesConfig) else KubernetesConfig()
        self.freshness = timedelta(minutes=cfg.freshness_minutes)
        self.context = context

    def normalize(self, raw: Any, attributes: Mapping[str, str]) -> list[Event]:
        obj = require_mapping(raw, "a Kubernetes Event")
        new_api = (
            "regarding" in obj
            or "note" in obj
            or str(obj.get("apiVersion", "")).startswith("events.k8s.io")
        )
        regarding = _obj_field(
            obj,
            "regarding" if new_api else "involvedObject",
            "regarding" if new_api else "involvedObject",
        )
        meta = _obj_field(obj, "metadata", "metadata")
        reason = _str_field(obj, "reason", "reason")
        message = _str_field(
            obj, "note" if new_api else "message", "note" if new_api else "message"
        )
        k8s_type = _str_field(obj, "type", "type")
        kind = _str_field(regarding, "kind", "regarding.kind")
        name = _str_field(regarding, "name", "regarding.name")
        namespace = _str_field(meta, "namespace", "metadata.namespace") or _str_field(
            regarding, "namespace", "regarding.namespace"
        )

        last, first, count = self._occurrence(obj, meta, new_api)

        if kind == "Node" and reason == "NodeNotReady":
            event_type: str | None = "node-not-ready"
        elif kind == "Pod":
            if k8s_type.lower() == "normal" and not self._normal_allowed(reason, message, k8s_type):
                raise Dropped("normal")
            event_type = classify_reason(reason, message, k8s_type)
        else:
            raise Dropped("unsupported-kind")
        if event_type is None:
            raise Dropped("unmapped-reason")
        if self.context.clock() - last > self.freshness:
            raise Dropped("stale")

        uid = (
            _str_field(meta, "uid", "metadata.uid")
            or f"{namespace}/{_str_field(meta, 'name', 'metadata.name')}"
        )
        return [
            Event(
                id=stable_id("kubernetes", uid, count, last.isoformat()),
                source="kubernetes",
                type=event_type,
                severity=Severity.INFO if k8s_type.lower() == "normal" else Severity.WARNING,
                resource=Resource(
                    kind=kind,
                    name=name,
                    namespace=namespace,
                    uid=_str_field(regarding, "uid", "regarding.uid"),
                    api_version=_str_field(regarding, "apiVersion", "regarding.apiVersion"),
                ),
                reason=reason,
                message=message,
                timestamp=last,
                first_timestamp=first,
                count=count,
                group_key=f"{namespace}/{owner_of(name)}" if kind == "Pod" else f"{kind}/{name}",
                metadata={
                    "kind": kind,
                    "apiVersion": _str_field(regarding, "apiVersion", "regarding.apiVersion"),
                    "count": count,
                    "type": k8s_type,
                    "reportingController": _str_field(
                        obj,
                        "reportingController" if new_api else "reportingComponent",
                        "reportingController",
                    ),
                    "reportingInstance": _str_field(obj, "reportingInstance", "reportingInstance"),
                    "fieldPath": _str_field(regarding, "fieldPath", "regarding.fieldPath"),
                    "api": "events.k8s.io/v1" if new_api else "v1",
                    "cluster": attributes.get("khook.cluster", ""),
                },
            )
        ]

    def _normal_allowed(self, reason: str, message: str, k8s_type: str) -> bool:
        mapped = classify_reason(reason, message, k8s_type)
        if mapped is None:
            return False
        entry = self.context.mapping.get(self.name, mapped)
        return entry is not None and entry.include_normal

    @staticmethod
    def _occurrence(
        obj: Mapping[str, Any], meta: Mapping[str, Any], new_api: bool
    ) -> tuple[datetime, datetime | None, int]:
        """(last occurrence, first occurrence, count) from whichever fields are set."""
        series = _obj_field(obj, "series", "series")
        last_ts_key = "deprecatedLastTimestamp" if new_api else "lastTimestamp"
        first_ts_key = "deprecatedFirstTimestamp" if new_api else "firstTimestamp"
        count_key = "deprecatedCount" if new_api else "count"
        candidates = [
            parse_time(series.get("lastObservedTime"), "series.lastObservedTime"),
            parse_time(obj.get("eventTime"), "eventTime"),
            parse_time(obj.get(last_ts_key), last_ts_key),
            parse_time(meta.get("creationTimestamp"), "metadata.creationTimestamp"),
        ]
        times = [t for t in candidates if t is not None]
        if not times:
            raise InvalidEventError(
                "the Event has no timestamp (series.lastObservedTime, eventTime, "
                f"{last_ts_key} or metadata.creationTimestamp)",
                field="metadata.creationTimestamp",
            )
        first = (
            parse_time(obj.get(first_ts_key), first_ts_key)
            or parse_time(obj.get("eventTime"), "eventTime")
            or min(times)
        )
        count = (
            _int_field(series, "count", "series.count")
            or _int_field(obj, count_key, count_key)
            or 1
        )
        return max(times), first, max(count, 1)
