"""The incident scenario of the docs (docs/operations.md, "Incidents"): a bad deploy of
``shop/Deployment/checkout`` seen by Alertmanager, the kubelet and GitHub, as raw payloads."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from tests.support.k8s_events import core_event
from tests.support.sources import sample

CHECKOUT = "shop/Deployment/checkout"


def hooks(follow_up: str = "2m") -> str:
    """One Hook for the three sources' event types, every configuration correlating."""
    correlate = f"{{by: workload, window: 10m, followUpInterval: {follow_up}}}"
    return HOOKS.replace("CORRELATE", correlate)


HOOKS = """\
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {name: checkout, namespace: shop}
spec:
  sources: [kubernetes, alertmanager, webhook]
  eventConfigurations:
  - eventType: kube-pod-crash-looping
    agentRef: {name: k8s-agent, namespace: kagent}
    prompt: "Alert {{.Reason}} on {{.ResourceName}}: find out why."
    correlate: CORRELATE
  - eventType: pod-restart
    agentRef: {name: k8s-agent, namespace: kagent}
    prompt: "Pod {{.ResourceName}} restarted: {{.Reason}}."
    correlate: CORRELATE
  - eventType: deployment-failed
    agentRef: {name: k8s-agent, namespace: kagent}
    prompt: "Deployment failed: {{.Message}}."
    correlate: CORRELATE
"""

PLUGINS = """\
plugins:
  - name: webhook
    config:
      endpoints:
        github:
          preset: github
          github:
            environments: {production: shop/Deployment/checkout}
"""

GITHUB_HEADERS = {"x-github-event": "deployment_status", "http.path": "/github"}


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def crash_looping(at: datetime, pod: str = "checkout-7d9f8-x2x4q") -> dict[str, Any]:
    """Alertmanager's KubePodCrashLooping for one Pod (kube-state-metrics labels)."""
    body: dict[str, Any] = copy.deepcopy(
        sample("alertmanager", "kube-pod-crash-looping-firing.json")
    )
    alert = body["alerts"][0]
    alert["labels"] = {**alert["labels"], "pod": pod, "namespace": "shop"}
    alert["startsAt"] = _stamp(at)
    alert["fingerprint"] = f"fp-{pod}"
    body["alerts"] = [alert]
    body["commonLabels"] = {}
    return body


def backoff(pod: str, count: int, at: datetime) -> dict[str, Any]:
    """The kubelet's BackOff Event (core/v1) for one Pod, its ``count``-th occurrence."""
    return core_event(
        message=f"Back-off restarting failed container app in pod {pod}",
        name=pod,
        count=count,
        first=_stamp(at),
        last=_stamp(at),
        created=_stamp(at),
        uid=f"uid-{pod}",
    )


def deployment_failure(at: datetime) -> dict[str, Any]:
    """GitHub's ``deployment_status`` failure of the production environment."""
    body: dict[str, Any] = copy.deepcopy(sample("webhook", "github-deployment-status-failure.json"))
    body["deployment_status"]["updated_at"] = _stamp(at)
    body["deployment_status"]["environment"] = "production"
    return body
