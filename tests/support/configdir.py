"""Build throw-away config directories for tests: the project's mappings plus given hooks."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.paths import REPO


def make_config(tmp_path: Path, hooks: str, *, plugins: str | None = None) -> Path:
    """A config dir with the project's event-mappings.yaml and plugins.yaml and ``hooks``."""
    config = tmp_path / "config"
    (config / "hooks").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "config" / "event-mappings.yaml", config / "event-mappings.yaml")
    if plugins is None:
        shutil.copy(REPO / "config" / "plugins.yaml", config / "plugins.yaml")
    else:
        (config / "plugins.yaml").write_text(plugins)
    (config / "hooks" / "hooks.yaml").write_text(hooks)
    return config


SHOP_HOOK = """\
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {name: web, namespace: shop}
spec:
  eventConfigurations:
  - eventType: pod-restart
    agentRef: {name: k8s-agent, namespace: kagent}
    prompt: "Pod {{.ResourceName}} restarted: {{.Reason}}"
  - eventType: probe-failed
    agentRef: {name: k8s-agent, namespace: kagent}
    prompt: "Probe of {{.ResourceName}} failed"
---
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {name: audit, namespace: shop}
spec:
  eventConfigurations:
  - eventType: pod-restart
    agentRef: {name: audit-agent}
    prompt: "Record the restart of {{.ResourceName}}"
"""

MISSPELT_SOURCE_HOOK = """\
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {name: alerts, namespace: monitoring}
spec:
  sources: [alertmnager]
  eventConfigurations:
  - eventType: high-cpu
    agentRef: {name: k8s-agent}
    prompt: "CPU of {{.ResourceName}} is high"
"""
"""A hook that never fires: its source is misspelt (the name to suggest is alertmanager)."""

DISK_FULL_HOOK = """\
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {name: disks, namespace: shop}
spec:
  eventConfigurations:
  - eventType: disk-full
    agentRef: {name: k8s-agent}
    prompt: "The disk of {{.ResourceName}} is almost full"
"""
"""A hook that never fires: a plain Hook is a Kubernetes hook, and no Kubernetes Event maps to
disk-full."""


def restart_hook(
    *,
    agent: str = "k8s-agent",
    agent_namespace: str = "kagent",
    name: str = "shop-restarts",
    prompt: str = "Pod {{.ResourceName}} restarted ({{.Reason}}). Find out why.",
    extensions: str = "",
) -> str:
    """One Hook in namespace ``shop`` sending pod restarts to one agent; ``extensions`` are
    lines of the configuration's extensions (``"coalesce: {window: 5m}"``)."""
    extra = "".join(f"    {line}\n" for line in extensions.splitlines())
    return f"""\
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {{name: {name}, namespace: shop}}
spec:
  eventConfigurations:
  - eventType: pod-restart
    agentRef: {{name: {agent}, namespace: {agent_namespace}}}
{extra}    prompt: "{prompt}"
"""
