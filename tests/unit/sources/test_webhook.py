"""The webhook source: the generic schema, GitHub failures and mapped endpoints."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from khook_core.errors import InvalidEventError
from khook_core.event import Severity
from khook_core.sources.base import Dropped
from khook_core.sources.webhook import WebhookConfig, WebhookSource
from tests.support.sources import NOW, make_source, sample
from tests.support.strategies import attributes, check_normalizer, json_values, mutations

GENERIC = sample("webhook", "generic-deployment-failed.json")
WORKFLOW_RUN = sample("webhook", "github-workflow-run-failure.json")
DEPLOYMENT_STATUS = sample("webhook", "github-deployment-status-failure.json")
SAMPLES = [
    GENERIC,
    sample("webhook", "generic-security-alert.json"),
    WORKFLOW_RUN,
    DEPLOYMENT_STATUS,
]

MAPPED = {
    "endpoints": {
        "pager": {
            "auth": "bearer",
            "rules": [
                {
                    "when": {"event.state": "triggered"},
                    "fields": {
                        "type": "{event.kind}",
                        "resource.kind": "Service",
                        "resource.name": "{service.name}",
                        "message": "{event.title}",
                        "severity": "{event.urgency}",
                        "id": "{event.id}",
                        "tags.team": "{service.team}",
                    },
                    "severityMap": {"high": "critical", "low": "warning"},
                },
                {
                    "when": {"event.state": "resolved"},
                    "fields": {
                        "type": "{event.kind}",
                        "resource.name": "{service.name}",
                        "status": "resolved",
                        "id": "{event.id}",
                    },
                },
            ],
        }
    }
}


def webhook(config: dict[str, Any] | None = None) -> WebhookSource:
    source: WebhookSource = make_source(WebhookSource, config)
    return source


def test_a_generic_event_becomes_one_event_with_every_field() -> None:
    [event] = webhook().normalize(GENERIC, {"http.path": "/", "http.request_id": "r1"})
    assert event.source == "webhook"
    assert event.type == "deployment-failed"
    assert (event.resource.kind, event.resource.name, event.resource.namespace) == (
        "Deployment",
        "checkout",
        "shop",
    )
    assert event.severity is Severity.ERROR
    assert event.reason == "SyncFailed"
    assert event.occurrence == "argocd/checkout/sync/4f2a9c1"
    assert event.tags == {"team": "payments", "environment": "production"}
    assert event.metadata["revision"] == "4f2a9c1"
    assert event.metadata["endpoint"] == "default"
    assert event.timestamp.isoformat() == "2026-01-05T10:31:13+00:00"
    assert event.raw_ref == "webhook:default:r1"


def test_the_generic_minimum_is_a_type_and_defaults_fill_the_rest() -> None:
    [event] = webhook().normalize({"type": "security-alert"}, {})
    assert event.timestamp == NOW
    assert event.severity is Severity.INFO  # the mapping row's severity then applies
    assert event.occurrence == ""
    assert event.status == "firing"


def test_the_same_generic_payload_has_the_same_id_whatever_the_key_order() -> None:
    reordered = dict(reversed(list(GENERIC.items())))
    without_id = {k: v for k, v in GENERIC.items() if k != "id"}
    source = webhook()
    assert source.normalize(GENERIC, {})[0].id == source.normalize(reordered, {})[0].id
    assert (
        source.normalize(without_id, {})[0].id
        == source.normalize(dict(reversed(list(without_id.items()))), {})[0].id
    )


def test_a_batch_gives_one_event_per_item_and_errors_name_the_item() -> None:
    events = webhook().normalize([GENERIC, {"type": "security-alert", "resource": "x"}], {})
    assert [e.type for e in events] == ["deployment-failed", "security-alert"]
    with pytest.raises(InvalidEventError) as caught:
        webhook().normalize([GENERIC, {"type": "security-alert", "severity": "urgent"}], {})
    assert caught.value.field == "events[1].severity"
    assert "unknown severity 'urgent'" in caught.value.message


def test_a_batch_over_the_limit_is_refused() -> None:
    with pytest.raises(InvalidEventError, match="at most 100 events"):
        webhook().normalize([{"type": "x"}] * 101, {})


@pytest.mark.parametrize(
    ("payload", "field", "text"),
    [
        ({}, "type", "type: required field is missing"),
        ({"type": "Deployment Failed"}, "type", "String should match pattern"),
        ({"type": "x", "serverity": "error"}, "serverity", "unknown field"),
        (
            {"type": "x", "resource": {"name": 3}},
            "resource.name",
            "expected a string, got a number",
        ),
        ({"type": "x", "resource": {"nmae": "a"}}, "resource.nmae", "unknown field"),
        ({"type": "x", "tags": {"a": 1}}, "tags.a", "expected a string, got a number"),
        ({"type": "x", "timestamp": "yesterday"}, "timestamp", "RFC 3339"),
        ({"type": "x", "status": "open"}, "status", "'firing' or 'resolved'"),
        ({"type": "x", "count": 0}, "count", "greater than or equal to 1"),
        ("just text", "(body)", "expected an object (an event), got a string"),
    ],
)
def test_generic_schema_violations_are_422_naming_the_field(
    payload: Any, field: str, text: str
) -> None:
    with pytest.raises(InvalidEventError) as caught:
        webhook().normalize(payload, {})
    assert caught.value.status == 422
    assert caught.value.field == field
    assert text in caught.value.message


def test_a_failed_workflow_run_is_a_deployment_failure() -> None:
    attrs = {"x-github-event": "workflow_run", "x-github-delivery": "72d3162e-cc78-11e3-81ab"}
    [event] = webhook().normalize(WORKFLOW_RUN, {"http.path": "/github", **attrs})
    assert event.type == "deployment-failed"
    assert event.severity is Severity.ERROR
    assert event.resource.kind == "GitHubWorkflow"
    assert event.resource.name == "octo-org/shop/.github/workflows/deploy.yml"
    assert event.tags["workflow"] == "Deploy to production"
    assert event.reason == "WorkflowRunFailure"
    assert event.occurrence == "workflow_run/30433642/1"
    assert event.tags["branch"] == "main"
    assert event.tags["repository"] == "octo-org/shop"
    assert "run #562" in event.message
    assert "concluded failure" in event.message
    assert event.metadata["url"] == "https://github.com/octo-org/shop/actions/runs/30433642"
    assert event.metadata["github_delivery"] == "72d3162e-cc78-11e3-81ab"
    assert event.first_timestamp is not None


def test_a_rerun_attempt_is_a_new_occurrence() -> None:
    rerun = copy.deepcopy(WORKFLOW_RUN)
    rerun["workflow_run"]["run_attempt"] = 2
    first, second = (
        webhook().normalize(p, {"x-github-event": "workflow_run"})[0] for p in (WORKFLOW_RUN, rerun)
    )
    assert first.occurrence != second.occurrence
    assert first.id != second.id


def test_a_failed_deployment_status_is_a_deployment_failure() -> None:
    [event] = webhook().normalize(DEPLOYMENT_STATUS, {"x-github-event": "deployment_status"})
    assert event.type == "deployment-failed"
    assert event.resource.name == "octo-org/shop/production"
    assert event.occurrence == "deployment/1482733510"
    assert "Helm upgrade timed out" in event.message
    assert event.tags["environment"] == "production"


@pytest.mark.parametrize(
    ("mutate", "event", "reason"),
    [
        (lambda p: p["workflow_run"].update(conclusion="success"), "workflow_run", "not-a-failure"),
        (lambda p: p.update(action="requested"), "workflow_run", "not-completed"),
        (
            lambda p: p["deployment_status"].update(state="success"),
            "deployment_status",
            "not-a-failure",
        ),
        (lambda p: None, "push", "unsupported-github-event"),
        (lambda p: None, "ping", "ping"),
    ],
)
def test_github_deliveries_that_are_not_failures_are_dropped_with_a_reason(
    mutate: Any, event: str, reason: str
) -> None:
    payload = copy.deepcopy(DEPLOYMENT_STATUS if event == "deployment_status" else WORKFLOW_RUN)
    mutate(payload)
    with pytest.raises(Dropped) as caught:
        webhook().normalize(payload, {"x-github-event": event})
    assert caught.value.reason == reason


def test_the_default_endpoint_recognises_github_payloads_without_headers() -> None:
    [event] = webhook().normalize(WORKFLOW_RUN, {"http.path": "/"})
    assert event.resource.kind == "GitHubWorkflow"
    with pytest.raises(Dropped, match="ping"):
        webhook().normalize({"zen": "Design for failure.", "hook_id": 1, "repository": {}}, {})


def test_github_options_select_workflows_and_conclusions() -> None:
    source = webhook(
        {
            "endpoints": {
                "github": {
                    "preset": "github",
                    "github": {"workflows": ["Build*"], "conclusions": ["failure", "cancelled"]},
                }
            }
        }
    )
    with pytest.raises(Dropped, match="workflow-not-selected"):
        source.normalize(WORKFLOW_RUN, {"http.path": "/github", "x-github-event": "workflow_run"})
    build = copy.deepcopy(WORKFLOW_RUN)
    build["workflow_run"]["name"] = "Build and test"
    build["workflow_run"]["conclusion"] = "cancelled"
    [event] = source.normalize(build, {"http.path": "/github", "x-github-event": "workflow_run"})
    assert event.reason == "WorkflowRunCancelled"


def test_github_payloads_missing_what_identifies_them_are_422() -> None:
    broken = copy.deepcopy(WORKFLOW_RUN)
    del broken["workflow_run"]["id"]
    with pytest.raises(InvalidEventError) as caught:
        webhook().normalize(broken, {"x-github-event": "workflow_run"})
    assert (caught.value.status, caught.value.field) == (422, "workflow_run.id")
    broken = copy.deepcopy(WORKFLOW_RUN)
    broken["repository"] = "octo-org/shop"
    with pytest.raises(InvalidEventError) as caught:
        webhook().normalize(broken, {"x-github-event": "workflow_run"})
    assert caught.value.field == "repository"


def test_a_mapped_endpoint_builds_events_from_its_rules() -> None:
    source = webhook(MAPPED)
    payload = {
        "event": {
            "id": "Q1",
            "kind": "IncidentTriggered",
            "state": "triggered",
            "title": "Checkout 5xx above 5%",
            "urgency": "high",
        },
        "service": {"name": "checkout", "team": "payments"},
    }
    [event] = source.normalize(payload, {"http.path": "/pager"})
    assert event.type == "incident-triggered"
    assert event.severity is Severity.CRITICAL
    assert (event.resource.kind, event.resource.name) == ("Service", "checkout")
    assert event.tags == {"team": "payments"}
    assert event.occurrence == "Q1"
    payload["event"]["state"] = "resolved"
    [resolved] = source.normalize(payload, {"http.path": "/pager/anything"})
    assert resolved.status == "resolved"
    payload["event"]["state"] = "acknowledged"
    with pytest.raises(Dropped, match="no-rule"):
        source.normalize(payload, {"http.path": "/pager"})


def test_unknown_endpoints_are_404_listing_the_configured_ones() -> None:
    with pytest.raises(InvalidEventError) as caught:
        webhook(MAPPED).normalize(GENERIC, {"http.path": "/nope"})
    assert caught.value.status == 404
    assert "default, github, grafana, pager, pagerduty" in caught.value.message


def test_http_options_follow_the_endpoint() -> None:
    source = webhook(
        {
            "endpoints": {
                "signed": {
                    "preset": "generic",
                    "auth": "hmac",
                    "signatureHeader": "X-Signature",
                    "timestampHeader": "X-Timestamp",
                    "replayWindowSeconds": 60,
                    "maxBodyBytes": 4096,
                }
            }
        }
    )
    assert source.http_options("/signed") == {
        "auth": "hmac",
        "max_body_bytes": 4096,
        "replay_window_seconds": 60,
        "timestamp_header": "X-Timestamp",
        "signature_headers": ("X-Signature",),
        "content_types": (
            "application/json",
            "application/cloudevents+json",
            "application/cloudevents-batch+json",
        ),
    }
    assert source.http_options("/github")["auth"] == "hmac"
    assert source.http_options("/")["auth"] == "any"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"endpoints": {"Bad Name": {}}}, "lower-case path segment"),
        ({"endpoints": {"x": {"preset": "mapped"}}}, "needs at least one rule"),
        (
            {"endpoints": {"x": {"preset": "generic", "rules": [{"eventType": "a"}]}}},
            "only used by preset 'mapped'",
        ),
        (
            {"endpoints": {"x": {"auth": "basic"}}},
            "Input should be 'any', 'bearer', 'hmac', 'standard-webhooks' or 'pagerduty'",
        ),
        ({"endpoints": {"x": {"maxBodyBytes": 0}}}, "greater than 0"),
    ],
)
def test_bad_endpoint_config_fails_at_load(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WebhookConfig.model_validate(config)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    raw=json_values | mutations(SAMPLES) | st.lists(mutations(SAMPLES), max_size=3),
    attrs=attributes,
)
def test_any_json_gives_events_or_a_clean_error(raw: Any, attrs: dict[str, str]) -> None:
    check_normalizer(webhook(MAPPED).normalize, raw, attrs)
