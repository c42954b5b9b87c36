"""Grafana Alerting's contact point and PagerDuty v3 webhooks through the real webhook function.

The bodies are the samples under config/samples/webhook, written from each sender's published
payload documentation; PagerDuty's signature is computed as its documentation specifies
(HMAC-SHA256 of the body, hex, ``v1=`` prefixed, comma-separated while a secret rotates).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from khook_core.runtime import get_runtime
from khook_core.sources.webhook import WebhookSource
from tests.support.a2a_agent import TestAgent
from tests.support.sources import TOKEN, make_source, sample, sample_bytes
from tests.support.strategies import check_normalizer, json_values, mutations

PD_SECRET = "pagerduty-subscription-secret-01"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
GRAFANA = sample_bytes("webhook", "grafana-contact-point-firing.json")
PAGERDUTY = sample_bytes("webhook", "pagerduty-incident-triggered.json")
HOOKS = """\
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {name: paging, namespace: ops}
spec:
  sources: [webhook]
  eventConfigurations:
  - eventType: grafana-alert
    agentRef: {name: k8s-agent, namespace: kagent}
    prompt: "Grafana: {{.Reason}} on {{.Namespace}}/{{.ResourceName}}: {{.Message}}"
  - eventType: pagerduty-incident
    agentRef: {name: k8s-agent, namespace: kagent}
    prompt: "PagerDuty: {{.Message}}"
"""


def pd_signature(body: bytes, *secrets: str) -> str:
    return ",".join(
        "v1=" + hmac.new(s.encode(), body, hashlib.sha256).hexdigest()
        for s in secrets or (PD_SECRET,)
    )


@pytest.fixture
def client(
    function_env: Callable[..., Any], http_client: Callable[[str], Any], a2a_agent: TestAgent
) -> Iterator[Any]:
    function_env(
        hooks=HOOKS,
        KHOOK_DISPATCH="auto",
        KAGENT_API_URL=a2a_agent.base_url,
        KHOOK_WEBHOOK_TOKEN=TOKEN,
        KHOOK_WEBHOOK_PAGERDUTY_SECRET=PD_SECRET,
    )
    yield http_client("webhook")
    get_runtime().close()


def post(client: Any, path: str, body: bytes, headers: dict[str, str]) -> Any:
    return client.post(path, data=body, headers={"Content-Type": "application/json", **headers})


def grafana_with(**alert: Any) -> bytes:
    doc = sample("webhook", "grafana-contact-point-firing.json")
    doc["alerts"][0] |= alert
    return json.dumps(doc).encode()


def test_a_grafana_notification_reaches_the_agent_once(client: Any, a2a_agent: TestAgent) -> None:
    first = post(client, "/grafana", GRAFANA, BEARER)
    again = post(client, "/grafana", GRAFANA, BEARER)  # Grafana's repeat interval

    assert first.status_code == 200, first.json
    assert first.json["decisions"][0]["resource"] == "shop/Pod/checkout-7d9f6c5b8-x2k4q"
    assert again.json["counts"] == {"duplicate": 1}
    [run] = a2a_agent.runs
    assert "CheckoutErrorRate" in run.text
    assert "5xx ratio of checkout is 12%" in run.text


def test_the_auto_endpoint_recognises_grafana_and_its_resolve(
    client: Any, a2a_agent: TestAgent
) -> None:
    post(client, "/", GRAFANA, BEARER)
    resolved = post(
        client, "/", grafana_with(status="resolved", endsAt="2026-01-05T10:40:00Z"), BEARER
    )

    assert resolved.status_code == 200
    assert resolved.json["decisions"][0]["status"] == "resolved"
    assert len(a2a_agent.runs) == 1


def test_a_khook_event_type_label_picks_another_mapping_row(client: Any) -> None:
    body = grafana_with(labels={"alertname": "X", "khook_event_type": "deployment-failed"})
    reply = post(client, "/grafana", body, BEARER)
    assert reply.json["decisions"][0]["type"] == "deployment-failed"


def test_a_signed_pagerduty_incident_reaches_the_agent_once(
    client: Any, a2a_agent: TestAgent
) -> None:
    headers = {"X-PagerDuty-Signature": pd_signature(PAGERDUTY)}
    first = post(client, "/pagerduty", PAGERDUTY, headers)
    again = post(client, "/pagerduty", PAGERDUTY, headers)  # PagerDuty's retry

    assert first.status_code == 200, first.json
    assert first.json["decisions"][0]["type"] == "pagerduty-incident"
    assert again.json["counts"] == {"duplicate": 1}
    [run] = a2a_agent.runs
    assert "Checkout API returns 5xx for 12% of requests" in run.text


def test_a_pagerduty_signature_made_with_a_rotated_secret_still_passes(
    client: Any, a2a_agent: TestAgent
) -> None:
    headers = {"X-PagerDuty-Signature": pd_signature(PAGERDUTY, "old-secret-0123456", PD_SECRET)}
    assert post(client, "/pagerduty", PAGERDUTY, headers).status_code == 200
    assert len(a2a_agent.runs) == 1


def pagerduty_with(event_type: str) -> bytes:
    doc = sample("webhook", "pagerduty-incident-triggered.json")
    doc["event"]["event_type"] = event_type
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("event_type", "decision"),
    [
        ("incident.acknowledged", "dropped:pagerduty-incident-acknowledged"),
        ("pagey.ping", "dropped:pagerduty-pagey-ping"),
        ("incident.resolved", "resolved"),
    ],
)
def test_other_pagerduty_events_are_answered_without_an_agent_run(
    client: Any,
    a2a_agent: TestAgent,
    event_type: str,
    decision: str,
) -> None:
    body = pagerduty_with(event_type)
    reply = post(client, "/pagerduty", body, {"X-PagerDuty-Signature": pd_signature(body)})
    assert reply.status_code == 200, reply.json
    assert reply.json["counts"] == {decision: 1}
    assert a2a_agent.runs == []


REFUSALS: list[tuple[str, str, bytes, dict[str, str], int, str]] = [
    ("pagerduty: unsigned", "/pagerduty", PAGERDUTY, {}, 401, "x-pagerduty-signature"),
    (
        "pagerduty: a bearer token is not a signature",
        "/pagerduty",
        PAGERDUTY,
        BEARER,
        401,
        "x-pagerduty-signature",
    ),
    (
        "pagerduty: other secret",
        "/pagerduty",
        PAGERDUTY,
        {"X-PagerDuty-Signature": pd_signature(PAGERDUTY, "someone-elses-secret")},
        401,
        "x-pagerduty-signature",
    ),
    (
        "pagerduty: tampered",
        "/pagerduty",
        PAGERDUTY.replace(b"4812", b"4813"),
        {"X-PagerDuty-Signature": pd_signature(PAGERDUTY)},
        401,
        "x-pagerduty-signature",
    ),
    (
        "pagerduty: no event",
        "/pagerduty",
        b'{"messages": []}',
        {"X-PagerDuty-Signature": pd_signature(b'{"messages": []}')},
        422,
        "event",
    ),
    (
        "pagerduty: no incident id",
        "/pagerduty",
        b'{"event": {"event_type": "incident.triggered", "data": {}}}',
        {
            "X-PagerDuty-Signature": pd_signature(
                b'{"event": {"event_type": "incident.triggered", "data": {}}}'
            )
        },
        422,
        "event.data.id",
    ),
    ("grafana: no alerts", "/grafana", b'{"orgId": 1}', BEARER, 422, "alerts"),
    (
        "grafana: bad status",
        "/grafana",
        grafana_with(status="pending"),
        BEARER,
        422,
        "alerts[0].status",
    ),
    (
        "grafana: no fingerprint",
        "/grafana",
        grafana_with(fingerprint=None),
        BEARER,
        422,
        "alerts[0].fingerprint",
    ),
    (
        "grafana: label not a string",
        "/grafana",
        grafana_with(labels={"alertname": 1}),
        BEARER,
        422,
        "alerts[0].labels",
    ),
    (
        "grafana: bad type label",
        "/grafana",
        grafana_with(labels={"khook_event_type": "Not Kebab"}),
        BEARER,
        422,
        "alerts[0].labels.khook_event_type",
    ),
    ("grafana: unauthenticated", "/grafana", GRAFANA, {}, 401, "authorization"),
]


@pytest.mark.parametrize(
    ("name", "path", "body", "headers", "status", "field"),
    REFUSALS,
    ids=[case[0] for case in REFUSALS],
)
def test_a_malformed_paging_delivery_is_refused_naming_the_field(
    client: Any,
    a2a_agent: TestAgent,
    name: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    field: str,
) -> None:
    reply = post(client, path, body, headers)

    assert reply.status_code == status, reply.json
    assert reply.json["field"] == field
    assert a2a_agent.runs == []


def test_without_a_pagerduty_secret_every_delivery_is_refused(
    function_env: Callable[..., Any], http_client: Callable[[str], Any]
) -> None:
    function_env(hooks=HOOKS, KHOOK_WEBHOOK_TOKEN=TOKEN, KHOOK_WEBHOOK_HMAC_SECRET=PD_SECRET)
    headers = {"X-PagerDuty-Signature": pd_signature(PAGERDUTY)} | BEARER
    reply = post(http_client("webhook"), "/pagerduty", PAGERDUTY, headers)

    assert reply.status_code == 401
    assert "no credentials configured" in reply.json["error"]


PRESET_SAMPLES = [
    sample("webhook", "grafana-contact-point-firing.json"),
    sample("webhook", "pagerduty-incident-triggered.json"),
    sample("webhook", "cloudevent-deployment-failed.json"),
]
ENDPOINTS = {"endpoints": {"events": {"preset": "cloudevents"}}}


@given(
    raw=json_values | mutations(PRESET_SAMPLES),
    path=st.sampled_from(["/", "/grafana", "/pagerduty", "/events"]),
    headers=st.sampled_from(
        [
            {},
            {"content-type": "application/cloudevents+json"},
            {"content-type": "application/cloudevents-batch+json"},
            {
                "ce-specversion": "1.0",
                "ce-id": "1",
                "ce-source": "/s",
                "ce-type": "x.deployment.failed",
            },
        ]
    ),
)
def test_any_input_to_a_sender_preset_gives_events_or_a_clean_error(
    raw: Any, path: str, headers: dict[str, str]
) -> None:
    source = make_source(WebhookSource, ENDPOINTS)
    check_normalizer(source.normalize, raw, {"http.path": path, **headers})
