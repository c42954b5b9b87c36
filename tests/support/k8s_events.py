"""Builders for Kubernetes Event objects in both API shapes, as the API server returns them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from khook_core.mapping import MappingTable
from khook_core.sources.base import SourceContext
from khook_core.sources.kubernetes import KubernetesConfig, KubernetesSource
from tests.support.paths import REPO

NOW = datetime(2026, 1, 5, 10, 35, tzinfo=UTC)


def core_event(
    reason: str = "BackOff",
    message: str = "Back-off restarting failed container app in pod web-0",
    *,
    type_: str = "Warning",
    kind: str = "Pod",
    name: str = "web-0",
    namespace: str = "shop",
    count: int = 1,
    first: str = "2026-01-05T10:00:00Z",
    last: str | None = "2026-01-05T10:31:12Z",
    created: str = "2026-01-05T10:00:00Z",
    uid: str = "7c1e",
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{name}.18a2f",
            "namespace": namespace,
            "uid": uid,
            "resourceVersion": "48213",
            "creationTimestamp": created,
        },
        "involvedObject": {
            "kind": kind,
            "namespace": namespace,
            "name": name,
            "uid": "a9d0",
            "apiVersion": "v1",
            "fieldPath": "spec.containers{app}",
        },
        "reason": reason,
        "message": message,
        "type": type_,
        "count": count,
        "firstTimestamp": first,
        "lastTimestamp": last,
        "source": {"component": "kubelet", "host": "node-3"},
        "eventTime": None,
        "reportingComponent": "kubelet",
        "reportingInstance": "node-3",
    }


def new_event(
    reason: str = "BackOff",
    note: str = "Back-off restarting failed container app in pod web-0",
    *,
    type_: str = "Warning",
    kind: str = "Pod",
    name: str = "web-0",
    namespace: str = "shop",
    event_time: str | None = "2026-01-05T10:30:00.000000Z",
    series: dict[str, Any] | None = None,
    created: str = "2026-01-05T10:30:00Z",
    deprecated_last: str | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {
            "name": f"{name}.1d3",
            "namespace": namespace,
            "uid": "b2c3",
            "resourceVersion": "50001",
            "creationTimestamp": created,
        },
        "regarding": {
            "kind": kind,
            "namespace": namespace,
            "name": name,
            "uid": "a9d0",
            "apiVersion": "v1",
        },
        "reason": reason,
        "note": note,
        "type": type_,
        "eventTime": event_time,
        "reportingController": "kubelet",
        "reportingInstance": "node-1",
    }
    if series is not None:
        event["series"] = series
    if deprecated_last is not None:
        event["deprecatedLastTimestamp"] = deprecated_last
    return event


def source(mapping: MappingTable | None = None, minutes: float = 15) -> KubernetesSource:
    """The kubernetes source with the project's mapping table, its clock fixed at ``NOW``."""
    table = mapping or MappingTable.load(REPO / "config" / "event-mappings.yaml")
    return KubernetesSource(
        KubernetesConfig.model_validate({"freshnessMinutes": minutes}),
        SourceContext(clock=lambda: NOW, mapping=table),
    )
