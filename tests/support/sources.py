"""Shared data and builders for the source tests (fixtures live in conftest.py)."""

from __future__ import annotations

import base64
import functools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from khook_core.mapping import MappingTable
from khook_core.sources.base import SourceContext
from tests.support.configdir import make_config
from tests.support.paths import REPO

SAMPLES = REPO / "config" / "samples"
TOKEN = "test-token-0123456789"
HMAC_SECRET = "test-hmac-secret"

HOOKS = """\
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {name: alerts, namespace: monitoring}
spec:
  sources: [alertmanager]
  eventConfigurations:
  - eventType: kube-pod-crash-looping
    agentRef: {name: k8s-agent, namespace: kagent}
    prompt: "Pod {{.ResourceName}} in {{.Namespace}} is crash looping: {{.Message}}"
  - eventType: disk-full
    agentRef: {name: k8s-agent, namespace: kagent}
    prompt: "Disk full on {{.ResourceName}}"
  - eventType: high-cpu
    agentRef: {name: k8s-agent, namespace: kagent}
    prompt: "High CPU on {{.ResourceName}} ({{.Tags.grafana_folder}})"
---
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {name: delivery, namespace: ci}
spec:
  sources: [webhook]
  eventConfigurations:
  - eventType: deployment-failed
    agentRef: {name: release-agent, namespace: kagent}
    prompt: "Deployment of {{.ResourceName}} failed: {{.Reason}}"
  - eventType: security-alert
    agentRef: {name: sec-agent, namespace: kagent}
    prompt: "Security alert on {{.ResourceName}}"
---
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {name: streaming, namespace: data}
spec:
  sources: [kafka]
  eventConfigurations:
  - eventType: consumer-lag
    agentRef: {name: kafka-agent, namespace: kagent}
    prompt: "Consumer group {{.ResourceName}} is lagging"
  - eventType: partition-offline
    agentRef: {name: kafka-agent, namespace: kagent}
    prompt: "Partition {{.ResourceName}} is offline"
---
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {name: jobs, namespace: data}
spec:
  sources: [cdc]
  eventConfigurations:
  - eventType: row-state-changed
    agentRef: {name: db-agent, namespace: kagent}
    prompt: "Row {{.ResourceName}} changed state: {{.Reason}}"
"""


def write_config(root: Path, *, plugins: str = "plugins: []\n", hooks: str = HOOKS) -> Path:
    return make_config(root, hooks, plugins=plugins)


def push_body(
    data: bytes, attributes: dict[str, str] | None = None, message_id: str = "1"
) -> dict[str, Any]:
    """A Pub/Sub push body, as functions-framework converts it to a CloudEvent."""
    message: dict[str, Any] = {
        "data": base64.b64encode(data).decode(),
        "messageId": message_id,
        "publishTime": "2026-01-05T10:31:13.120Z",
    }
    if attributes:
        message["attributes"] = attributes
    return {"message": message, "subscription": "projects/p1/subscriptions/khook-push"}


def sample(source: str, name: str) -> Any:
    return json.loads((SAMPLES / source / name).read_text())


def sample_bytes(source: str, name: str) -> bytes:
    return (SAMPLES / source / name).read_bytes()


NOW = datetime(2026, 1, 5, 10, 35, tzinfo=UTC)


@functools.cache
def mapping_table() -> MappingTable:
    """The project's mapping table, where every source's rows live."""
    return MappingTable.load(REPO / "config" / "event-mappings.yaml")


def make_source(cls: Any, config: dict[str, Any] | None = None, *, now: datetime = NOW) -> Any:
    """A source instance as the registry builds it: config validated by its ``config_model``."""
    model = cls.config_model
    validated = model.model_validate(config or {}) if model is not None else None
    return cls(validated, SourceContext(clock=lambda: now, mapping=mapping_table()))
