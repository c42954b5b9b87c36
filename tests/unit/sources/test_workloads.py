"""Workload identity on the events of every source: owner attributes and the name heuristic
(Kubernetes), the label map (Alertmanager), ``workload.*`` fields (mapped sources) and the
environment map (GitHub)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from khook_core.event import Workload
from khook_core.sources.alertmanager import AlertmanagerSource
from khook_core.sources.kafka import KafkaSource
from khook_core.sources.kubernetes import owner_of
from khook_core.sources.webhook import WebhookSource
from khook_core.workloads import infer, infer_from_pod
from tests.support.k8s_events import new_event, source
from tests.support.sources import make_source, sample

FIRING = sample("alertmanager", "kube-pod-crash-looping-firing.json")
DEPLOYMENT_STATUS = sample("webhook", "github-deployment-status-failure.json")


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        ("checkout-7d9f8-x2x4q", ("Deployment", "checkout")),
        ("web-7d9f8c6b5-x2x9q", ("Deployment", "web")),
        ("node-exporter-66b6c48dd5-bcdfg", ("Deployment", "node-exporter")),
        ("worker-0", ("StatefulSet", "worker")),
        ("kube-proxy-x2x4q", None),  # DaemonSet or Job: the name names no kind
        ("exporter", None),
    ],
)
def test_the_pod_name_heuristic_is_marked_inferred(pod: str, expected: tuple[str, str] | None):
    found = infer_from_pod("shop", pod)

    if expected is None:
        assert not found
    else:
        assert (found.kind, found.name, found.namespace, found.inferred) == (
            *expected,
            "shop",
            True,
        )


def test_a_controller_is_its_own_workload_and_other_kinds_have_none():
    assert infer("shop", "StatefulSet", "db") == Workload(
        namespace="shop", kind="StatefulSet", name="db"
    )
    assert infer("shop", "ReplicaSet", "checkout-7d9f8").name == "checkout"
    assert not infer("", "Node", "n1")


def test_a_kubernetes_event_takes_the_forwarders_owner_attributes():
    attributes = {
        "khook.cluster": "prod-eu",
        "khook.workload.kind": "Deployment",
        "khook.workload.name": "checkout",
        "khook.workload.namespace": "shop",
    }
    [event] = source().normalize(new_event(name="checkout-abc"), attributes)

    assert event.workload == Workload(
        cluster="prod-eu", namespace="shop", kind="Deployment", name="checkout"
    )


def test_without_owner_attributes_a_kubernetes_event_infers_its_workload():
    [event] = source().normalize(new_event(name="checkout-7d9f8-x2x4q"), {})

    assert event.workload == Workload(
        namespace="shop", kind="Deployment", name="checkout", inferred=True
    )
    assert event.workload.ref() == "shop/Deployment/checkout"


def alertmanager(config: dict[str, Any] | None = None) -> AlertmanagerSource:
    am: AlertmanagerSource = make_source(AlertmanagerSource, config)
    return am


def test_an_alert_names_its_workload_by_kube_state_metrics_labels():
    web, worker = alertmanager().normalize(FIRING, {})

    assert web.workload == Workload(namespace="shop", kind="Deployment", name="web", inferred=True)
    assert worker.workload == Workload(
        namespace="shop", kind="StatefulSet", name="worker", inferred=True
    )
    body = {
        **FIRING,
        "alerts": [
            {
                **FIRING["alerts"][0],
                "labels": {
                    "alertname": "KubeDeploymentReplicasMismatch",
                    "namespace": "shop",
                    "deployment": "checkout",
                    "job": "kube-state-metrics",
                    "cluster": "prod-eu",
                },
            }
        ],
    }
    [event] = alertmanager().normalize(body, {})
    # ``job`` is Prometheus' scrape job, never a Job
    assert event.workload == Workload(
        cluster="prod-eu", namespace="shop", kind="Deployment", name="checkout"
    )


def test_a_receiver_can_have_its_own_workload_label_map():
    config = {
        "receiverWorkloadLabels": {"khook": {"namespace": "k8s_ns", "kinds": {"app": "Deployment"}}}
    }
    body = {
        **FIRING,
        "alerts": [
            {
                **FIRING["alerts"][0],
                "labels": {"alertname": "HighLatency", "k8s_ns": "shop", "app": "checkout"},
            }
        ],
    }

    [event] = alertmanager(config).normalize(body, {})
    [other] = alertmanager(config).normalize({**body, "receiver": "team-b"}, {})

    assert event.workload == Workload(namespace="shop", kind="Deployment", name="checkout")
    assert not other.workload


def test_mapped_sources_fill_the_workload_from_field_templates():
    kafka: KafkaSource = make_source(
        KafkaSource,
        {
            "rules": [
                {
                    "eventType": "consumer-lag",
                    "fields": {
                        "resource.name": "{service}",
                        "workload.namespace": "{ns}",
                        "workload.kind": "Deployment",
                        "workload.name": "{service}",
                        "workload.cluster": "{cluster}",
                    },
                }
            ]
        },
    )
    attributes = {
        "kafka.topic": "app.errors",
        "kafka.partition": "0",
        "kafka.offset": "1",
        "kafka.timestamp": "1767609071000",
    }

    [event] = kafka.normalize({"service": "checkout", "ns": "shop", "cluster": "prod"}, attributes)

    assert event.workload == Workload(
        cluster="prod", namespace="shop", kind="Deployment", name="checkout"
    )


def test_a_generic_webhook_event_may_name_its_workload():
    webhook: WebhookSource = make_source(WebhookSource, None)
    body = {
        "type": "deployment-failed",
        "workload": {"namespace": "shop", "kind": "Deployment", "name": "checkout"},
    }
    [event] = webhook.normalize(body, {})

    assert event.workload.ref() == "shop/Deployment/checkout"


def test_a_github_deployment_maps_its_environment_to_a_workload():
    config = {
        "endpoints": {
            "github": {
                "preset": "github",
                "github": {
                    "environments": {
                        "staging": "shop-staging/Deployment/checkout",
                        "octo-org/shop/production": "shop/Deployment/checkout",
                    }
                },
            }
        }
    }
    webhook: WebhookSource = make_source(WebhookSource, config)
    attributes = {"http.path": "/github", "x-github-event": "deployment_status"}

    [event] = webhook.normalize(DEPLOYMENT_STATUS, attributes)
    [unmapped] = make_source(WebhookSource, None).normalize(DEPLOYMENT_STATUS, attributes)

    assert event.workload == Workload(namespace="shop", kind="Deployment", name="checkout")
    assert not unmapped.workload


def test_a_github_environment_map_must_name_namespace_kind_and_name():
    config = {
        "endpoints": {
            "github": {"preset": "github", "github": {"environments": {"production": "checkout"}}}
        }
    }
    with pytest.raises((ValidationError, ValueError), match="NAMESPACE/KIND/NAME"):
        make_source(WebhookSource, config)


_SAFE = "[bcdfghjklmnpqrstvwxz2456789]"
_ONE_BY_ONE = {
    # The patterns as they were tried one after the other, each whole: the single
    # alternations that replaced them must answer the same for every name.
    "workload": (
        (re.compile(rf"^(?P<name>.+)-{_SAFE}{{5,10}}-{_SAFE}{{5}}$"), "Deployment"),
        (re.compile(r"^(?P<name>.+)-\d+$"), "StatefulSet"),
    ),
    "owner": (
        (re.compile(rf"^(?P<name>.+)-{_SAFE}{{6,10}}-{_SAFE}{{5}}$"), ""),
        (re.compile(rf"^(?P<name>.+)-{_SAFE}{{5}}$"), ""),
        (re.compile(r"^(?P<name>.+)-\d+$"), ""),
    ),
}


def _one_by_one(which: str, name: str) -> tuple[str, str] | None:
    for pattern, kind in _ONE_BY_ONE[which]:
        match = pattern.match(name)
        if match:
            return kind, match["name"]
    return None


NAMES = st.text(alphabet="-bcdx29a0\n٣e", max_size=24) | st.sampled_from(
    ["web-7d9f8c6b5-x2x9q", "web-x2x9q", "web-12", "web-12\n", "-bcdfg", "a-bcdfgh-bcdfg\n"]
)


@settings(max_examples=500, deadline=None)
@given(name=NAMES)
def test_one_match_call_answers_as_the_patterns_one_by_one(name: str):
    expected = _one_by_one("workload", name)
    got = infer_from_pod.__wrapped__("ns", name)
    assert ((got.kind, got.name) if got else None) == expected
    owner = _one_by_one("owner", name)
    assert owner_of.__wrapped__(name) == (name if owner is None else owner[1])
