"""The gcp source: Cloud Monitoring incidents and Cloud Build status messages.

The payloads are the samples under config/samples/gcp, written from Google's published
notification schema (incident ``version: "1.2"``) and Build resource. The end-to-end tests
publish them to the Pub/Sub emulator, whose push subscription calls the real function, which
calls the a2a-sdk agent.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from khook_core.errors import InvalidEventError
from khook_core.sources.base import Dropped
from khook_core.sources.gcp import GcpSource
from tests.support.gcp import BUILD_ATTRS, BUILD_FAILED, BUILD_OK, INCIDENT_CLOSED, INCIDENT_OPEN
from tests.support.sources import make_source, sample
from tests.support.strategies import attributes, check_normalizer, json_values, mutations


def gcp(name: str) -> Any:
    return sample("gcp", name)


def normalize(body: Any, attributes: dict[str, str] | None = None) -> Any:
    [event] = make_source(GcpSource).normalize(body, attributes or {})
    return event


# --------------------------------------------------------------------------------------------
# Normalising
# --------------------------------------------------------------------------------------------


def test_a_k8s_container_incident_names_its_pod_namespace_and_container() -> None:
    event = normalize(gcp(INCIDENT_OPEN))

    assert (event.type, event.status, event.severity) == (
        "monitoring-incident",
        "firing",
        "critical",
    )
    assert event.resource.ref() == "shop/Pod/checkout-7d9f6c5b8-x2k4q"
    assert event.metadata["workload"] == {
        "kind": "Pod",
        "name": "checkout-7d9f6c5b8-x2k4q",
        "namespace": "shop",
        "container": "api",
        "cluster": "prod-eu",
        "location": "europe-west1",
    }
    assert event.tags["container"] == "api"
    assert event.tags["policy"] == "Container memory near its limit"
    assert event.reason == "Memory limit utilization above 90%"
    assert event.metadata["url"].startswith("https://console.cloud.google.com/monitoring/")
    assert event.occurrence == "0.nxk2f8q7c3a1"


def test_a_closed_incident_resolves_the_open_one() -> None:
    opened, closed = normalize(gcp(INCIDENT_OPEN)), normalize(gcp(INCIDENT_CLOSED))

    assert closed.status == "resolved"
    assert closed.occurrence == opened.occurrence
    assert closed.id != opened.id


@pytest.mark.parametrize(
    ("severity", "expected"), [("Error", "error"), ("Warning", "warning"), ("No severity", "info")]
)
def test_the_policy_severity_becomes_the_event_severity(severity: str, expected: str) -> None:
    body = gcp(INCIDENT_OPEN)
    body["incident"]["severity"] = severity
    assert normalize(body).severity == expected


def test_a_gce_instance_incident_is_named_by_its_display_name() -> None:
    body = gcp(INCIDENT_OPEN)
    body["incident"]["resource"] = {
        "type": "gce_instance",
        "labels": {"instance_id": "1234", "zone": "europe-west1-b"},
    }
    body["incident"]["resource_display_name"] = "batch-runner-1"
    event = normalize(body)
    assert (event.resource.kind, event.resource.name) == ("gce_instance", "batch-runner-1")
    assert event.metadata["workload"] == {}


def test_a_failed_build_names_trigger_repository_commit_and_log() -> None:
    event = normalize(gcp(BUILD_FAILED), BUILD_ATTRS)

    assert (event.type, event.severity, event.reason) == ("build-failed", "error", "BuildFailure")
    assert (event.resource.kind, event.resource.name) == ("CloudBuildTrigger", "checkout-main")
    assert (
        event.tags.items()
        >= {
            "repository": "checkout",
            "branch": "main",
            "commit": "4e1f2a9c0b7d",
            "trigger": "checkout-main",
        }.items()
    )
    assert event.metadata["log_url"].startswith("https://console.cloud.google.com/cloud-build/")
    assert "step exited with non-zero status" in event.message


@pytest.mark.parametrize("status", ["TIMEOUT", "INTERNAL_ERROR"])
def test_timeouts_and_internal_errors_are_failures(status: str) -> None:
    body = gcp(BUILD_FAILED) | {"status": status}
    assert normalize(body, BUILD_ATTRS | {"status": status}).reason.startswith("Build")


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("SUCCESS", "build-success"),
        ("WORKING", "build-working"),
        ("QUEUED", "build-queued"),
        ("CANCELLED", "build-cancelled"),
        ("STATUS_UNKNOWN", "build-status-unknown"),
    ],
)
def test_other_build_statuses_are_dropped_with_their_name(status: str, reason: str) -> None:
    with pytest.raises(Dropped) as dropped:
        normalize(gcp(BUILD_OK) | {"status": status}, BUILD_ATTRS | {"status": status})
    assert dropped.value.reason == reason


MALFORMED: list[tuple[str, Any, dict[str, str], str]] = [
    ("not an object", [1], {}, "(body)"),
    ("unknown shape", {"hello": "world"}, {}, "(body)"),
    ("old schema", gcp(INCIDENT_OPEN) | {"version": "1.1"}, {}, "version"),
    ("no version", {"incident": gcp(INCIDENT_OPEN)["incident"]}, {}, "version"),
    ("incident not an object", {"incident": "x", "version": "1.2"}, {}, "incident"),
    (
        "no incident id",
        {"version": "1.2", "incident": {"state": "open"}},
        {},
        "incident.incident_id",
    ),
    (
        "unknown state",
        {"version": "1.2", "incident": {"incident_id": "1", "state": "maybe"}},
        {},
        "incident.state",
    ),
    (
        "labels not an object",
        {
            "version": "1.2",
            "incident": {
                "incident_id": "1",
                "state": "open",
                "resource": {"type": "k8s_pod", "labels": [1]},
            },
        },
        {},
        "incident.resource.labels",
    ),
    (
        "bad started_at",
        {"version": "1.2", "incident": {"incident_id": "1", "state": "open", "started_at": "soon"}},
        {},
        "incident.started_at",
    ),
    ("build without id", {"status": "FAILURE", "logUrl": "x"}, {"status": "FAILURE"}, "id"),
    ("unknown build status", gcp(BUILD_FAILED) | {"status": "EXPLODED"}, BUILD_ATTRS, "status"),
    (
        "substitutions not an object",
        gcp(BUILD_FAILED) | {"substitutions": "x"},
        BUILD_ATTRS,
        "substitutions",
    ),
]


@pytest.mark.parametrize(
    ("name", "body", "attributes", "field"), MALFORMED, ids=[case[0] for case in MALFORMED]
)
def test_a_malformed_message_is_invalid_naming_the_field(
    name: str,
    body: Any,
    attributes: dict[str, str],
    field: str,
) -> None:
    with pytest.raises(InvalidEventError) as caught:
        make_source(GcpSource).normalize(body, attributes)
    assert caught.value.field == field


SAMPLES = [gcp(INCIDENT_OPEN), gcp(INCIDENT_CLOSED), gcp(BUILD_FAILED), gcp(BUILD_OK)]


@given(
    raw=json_values | mutations(SAMPLES),
    attrs=attributes | st.just(BUILD_ATTRS) | st.just({}),
)
def test_any_input_gives_events_or_a_clean_error(raw: Any, attrs: dict[str, str]) -> None:
    check_normalizer(make_source(GcpSource).normalize, raw, attrs)
