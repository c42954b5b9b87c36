"""The Kubernetes normaliser written plainly, as the oracle of the source's fast one.

Every field is read with the generic helpers (``parse_time``, ``stable_id``, ``workloads``) and
the Event is built by pydantic's validating constructor: slower, and obviously right. The
source's ``normalize`` must agree with it on every payload, error and drop alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from khook_core import workloads
from khook_core.errors import InvalidEventError
from khook_core.event import Event, Severity, stable_id
from khook_core.sources.base import Dropped, pubsub_ref
from khook_core.sources.kubernetes import KubernetesSource, _validate, classify_reason, owner_of
from khook_core.timeparse import parse_time


def normalize(source: KubernetesSource, raw: Any, attributes: Mapping[str, str]) -> list[Event]:
    obj: dict[str, Any] = dict(_validate(raw))
    new_api = (
        "regarding" in obj
        or "note" in obj
        or (obj.get("apiVersion") or "").startswith("events.k8s.io")
    )
    ref: dict[str, Any] = (obj.get("regarding") if new_api else obj.get("involvedObject")) or {}
    meta: dict[str, Any] = obj.get("metadata") or {}
    reason = obj.get("reason") or ""
    message = (obj.get("note") if new_api else obj.get("message")) or ""
    k8s_type = obj.get("type") or ""
    kind = ref.get("kind") or ""
    name = ref.get("name") or ""
    namespace = meta.get("namespace") or ref.get("namespace") or ""
    last, first, count = _occurrence(obj, meta, new_api)

    if kind == "Node" and reason == "NodeNotReady":
        event_type: str | None = "node-not-ready"
    elif kind == "Pod":
        if k8s_type.lower() == "normal":
            mapped = classify_reason(reason, message, k8s_type)
            entry = None if mapped is None else source.context.mapping.get("kubernetes", mapped)
            if entry is None or not entry.include_normal:
                raise Dropped("normal")
        event_type = classify_reason(reason, message, k8s_type)
    else:
        raise Dropped("unsupported-kind")
    if event_type is None:
        raise Dropped("unmapped-reason")
    if source.context.clock() - last > source.freshness:
        raise Dropped("stale")

    uid = meta.get("uid") or f"{namespace}/{meta.get('name') or ''}"
    api_version = ref.get("apiVersion") or ""
    cluster = attributes.get("khook.cluster", "")
    reporter = obj.get("reportingController" if new_api else "reportingComponent") or ""
    fields = {
        "id": stable_id("kubernetes", uid, count, last.timestamp()),
        "source": "kubernetes",
        "type": event_type,
        "severity": Severity.INFO if k8s_type.lower() == "normal" else Severity.WARNING,
        "resource": {
            "kind": kind,
            "name": name,
            "namespace": namespace,
            "uid": ref.get("uid") or "",
            "api_version": api_version,
        },
        "workload": workloads.from_attributes(attributes, cluster, namespace)
        or workloads.infer(namespace, kind, name, cluster),
        "reason": reason,
        "message": message,
        "timestamp": last,
        "first_timestamp": first,
        "count": count,
        "group_key": f"{namespace}/{owner_of(name)}" if kind == "Pod" else f"{kind}/{name}",
        "raw_ref": pubsub_ref(attributes),
        "metadata": {
            "kind": kind,
            "apiVersion": api_version,
            "count": count,
            "type": k8s_type,
            "reportingController": reporter,
            "reportingInstance": obj.get("reportingInstance") or "",
            "fieldPath": ref.get("fieldPath") or "",
            "api": "events.k8s.io/v1" if new_api else "v1",
            "cluster": cluster,
        },
    }
    return [Event.model_validate(fields)]


def _occurrence(
    obj: dict[str, Any], meta: dict[str, Any], new_api: bool
) -> tuple[datetime, datetime | None, int]:
    series: dict[str, Any] = obj.get("series") or {}
    if new_api:
        last_key, first_key = "deprecatedLastTimestamp", "deprecatedFirstTimestamp"
        legacy_count = obj.get("deprecatedCount")
    else:
        last_key, first_key = "lastTimestamp", "firstTimestamp"
        legacy_count = obj.get("count")
    event_time = parse_time(obj.get("eventTime"), "eventTime")
    candidates = (
        parse_time(series.get("lastObservedTime"), "series.lastObservedTime"),
        event_time,
        parse_time(obj.get(last_key), last_key),
        parse_time(meta.get("creationTimestamp"), "metadata.creationTimestamp"),
    )
    times = [t for t in candidates if t is not None]
    if not times:
        raise InvalidEventError(
            "the Event has no timestamp (series.lastObservedTime, eventTime, "
            f"{last_key} or metadata.creationTimestamp)",
            field="metadata.creationTimestamp",
        )
    first = parse_time(obj.get(first_key), first_key) or event_time or min(times)
    count = series.get("count") or legacy_count or 1
    return max(times), first, max(count, 1)
