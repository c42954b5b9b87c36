"""Standard Webhooks and CloudEvents senders through the real webhook function into the agent.

Every request is signed by the ``standardwebhooks`` package or built by the ``cloudevents``
SDK, the senders' own code; malformed variants are derived from what those libraries produce.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cloudevents.conversion import to_binary, to_json, to_structured
from cloudevents.http import CloudEvent
from standardwebhooks import Webhook

from khook_core.runtime import get_runtime
from tests.support.a2a_agent import TestAgent
from tests.support.sources import TOKEN

SECRET = "whsec_" + base64.b64encode(b"khook-standard-webhooks-key-0001").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"khook-standard-webhooks-key-0000").decode()
BEARER = {"Authorization": f"Bearer {TOKEN}"}
PLUGINS = """\
plugins:
  - name: webhook
    config:
      endpoints:
        svix: {preset: generic, auth: standard-webhooks}
        events: {preset: cloudevents, auth: bearer}
        plain: {preset: generic, auth: bearer}
"""
HOOKS = """\
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {name: delivery, namespace: ci}
spec:
  sources: [webhook]
  eventConfigurations:
  - eventType: deployment-failed
    agentRef: {name: k8s-agent, namespace: kagent}
    prompt: "Deployment of {{.ResourceName}} failed: {{.Message}}"
"""
GENERIC = json.dumps(
    {
        "type": "deployment-failed",
        "resource": {"kind": "Service", "name": "api"},
        "message": "rollout of api 1.4.2 failed",
    }
).encode()


@pytest.fixture
def client(
    function_env: Callable[..., Any], http_client: Callable[[str], Any], a2a_agent: TestAgent
) -> Iterator[Any]:
    function_env(
        plugins=PLUGINS,
        hooks=HOOKS,
        KHOOK_DISPATCH="auto",
        KAGENT_API_URL=a2a_agent.base_url,
        KHOOK_WEBHOOK_TOKEN=TOKEN,
        KHOOK_WEBHOOK_STANDARD_WEBHOOKS_SECRET=SECRET,
    )
    yield http_client("webhook")
    get_runtime().close()


# --------------------------------------------------------------------------------------------
# Standard Webhooks
# --------------------------------------------------------------------------------------------


def signed(
    body: bytes, msg_id: str = "msg_2a1", *, secret: str = SECRET, at: datetime | None = None
) -> dict[str, str]:
    """The three headers a Standard Webhooks sender puts on a delivery."""
    at = at or datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
    }


def post(
    client: Any,
    path: str,
    body: bytes,
    headers: dict[str, str],
    content_type: str = "application/json",
) -> Any:
    return client.post(path, data=body, headers={"Content-Type": content_type, **headers})


def test_a_standard_webhooks_delivery_reaches_the_agent_once(
    client: Any, a2a_agent: TestAgent
) -> None:
    first = post(client, "/svix", GENERIC, signed(GENERIC))
    again = post(client, "/svix", GENERIC, signed(GENERIC))  # the sender's retry: same id

    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json["counts"] == {"dispatched": 1}
    assert again.json["counts"] == {"duplicate": 1}
    assert len(a2a_agent.runs) == 1
    assert "rollout of api 1.4.2 failed" in a2a_agent.runs[0].text


def test_a_new_webhook_id_is_a_new_occurrence(client: Any, a2a_agent: TestAgent) -> None:
    post(client, "/svix", GENERIC, signed(GENERIC, "msg_1"))
    second = post(client, "/svix", GENERIC, signed(GENERIC, "msg_2"))

    assert second.json["counts"] == {"dispatched": 1}
    assert len(a2a_agent.runs) == 2


def test_a_rotated_key_passes_with_the_old_and_new_signatures_side_by_side(
    client: Any, a2a_agent: TestAgent
) -> None:
    at = datetime.now(UTC)
    old = Webhook(OLD_SECRET).sign("msg_rot", at, GENERIC)
    new = Webhook(SECRET).sign("msg_rot", at, GENERIC)
    headers = signed(GENERIC, "msg_rot", at=at) | {"webhook-signature": f"{old} {new}"}

    reply = post(client, "/svix", GENERIC, headers)

    assert reply.status_code == 200, reply.json
    assert len(a2a_agent.runs) == 1


def _expired() -> dict[str, str]:
    return signed(GENERIC, at=datetime.now(UTC) - timedelta(minutes=6))


def _future() -> dict[str, str]:
    return signed(GENERIC, at=datetime.now(UTC) + timedelta(minutes=6))


def _without(name: str) -> dict[str, str]:
    return {k: v for k, v in signed(GENERIC).items() if k != name}


STANDARD_WEBHOOKS_REFUSALS: list[tuple[str, Callable[[], dict[str, str]], bytes, str]] = [
    ("expired", _expired, GENERIC, "webhook-timestamp"),
    ("from the future", _future, GENERIC, "webhook-timestamp"),
    (
        "tampered body",
        lambda: signed(GENERIC),
        GENERIC.replace(b"api", b"web"),
        "webhook-signature",
    ),
    ("another key", lambda: signed(GENERIC, secret=OLD_SECRET), GENERIC, "webhook-signature"),
    (
        "another id",
        lambda: signed(GENERIC, "msg_a") | {"webhook-id": "msg_b"},
        GENERIC,
        "webhook-signature",
    ),
    ("no id", lambda: _without("webhook-id"), GENERIC, "webhook-id"),
    ("no timestamp", lambda: _without("webhook-timestamp"), GENERIC, "webhook-timestamp"),
    ("no signature", lambda: _without("webhook-signature"), GENERIC, "webhook-signature"),
    (
        "timestamp not a number",
        lambda: signed(GENERIC) | {"webhook-timestamp": "1e9"},
        GENERIC,
        "webhook-timestamp",
    ),
    (
        "unknown version only",
        lambda: {
            **signed(GENERIC),
            "webhook-signature": signed(GENERIC)["webhook-signature"].replace("v1,", "v1a,"),
        },
        GENERIC,
        "webhook-signature",
    ),
    (
        "timestamp in superscript digits",
        lambda: signed(GENERIC) | {"webhook-timestamp": "\u00b2\u00b3"},
        GENERIC,
        "webhook-timestamp",
    ),
    ("a bearer token instead", lambda: BEARER, GENERIC, "webhook-id"),
]


@pytest.mark.parametrize(
    ("name", "headers", "body", "field"),
    STANDARD_WEBHOOKS_REFUSALS,
    ids=[case[0] for case in STANDARD_WEBHOOKS_REFUSALS],
)
def test_a_bad_standard_webhooks_delivery_is_refused_with_401(
    client: Any,
    a2a_agent: TestAgent,
    name: str,
    headers: Callable[[], dict[str, str]],
    body: bytes,
    field: str,
) -> None:
    reply = post(client, "/svix", body, headers())

    assert reply.status_code == 401, reply.json
    assert reply.json["field"] == field
    assert a2a_agent.runs == []


def test_without_a_standard_webhooks_secret_every_delivery_is_refused(
    function_env: Callable[..., Any], http_client: Callable[[str], Any]
) -> None:
    function_env(
        plugins=PLUGINS,
        hooks=HOOKS,
        KHOOK_WEBHOOK_TOKEN=TOKEN,
        KHOOK_WEBHOOK_HMAC_SECRET="not-this-one",
    )
    reply = post(http_client("webhook"), "/svix", GENERIC, signed(GENERIC))

    assert reply.status_code == 401
    assert "no credentials configured" in reply.json["error"]


# --------------------------------------------------------------------------------------------
# CloudEvents over HTTP
# --------------------------------------------------------------------------------------------

DEPLOY_DATA = {"message": "rollout of checkout failed: image pull error", "severity": "error"}


def deploy_event(event_id: str = "e-1", source: str = "/ci/argo/rollouts") -> CloudEvent:
    return CloudEvent(
        {
            "type": "com.example.deployment.failed",
            "source": source,
            "id": event_id,
            "subject": "checkout",
        },
        DEPLOY_DATA,
    )


def test_a_structured_cloudevent_reaches_the_agent_and_its_redelivery_is_a_duplicate(
    client: Any, a2a_agent: TestAgent
) -> None:
    headers, body = to_structured(deploy_event())
    first = post(client, "/events", body, headers | BEARER, headers["content-type"])
    again = post(client, "/events", body, headers | BEARER, headers["content-type"])

    assert first.status_code == 200, first.json
    assert first.json["decisions"][0]["type"] == "deployment-failed"
    assert again.json["counts"] == {"duplicate": 1}
    [run] = a2a_agent.runs
    assert "checkout" in run.text
    assert "image pull error" in run.text


def test_the_same_id_from_another_source_is_another_occurrence(
    client: Any, a2a_agent: TestAgent
) -> None:
    for source in ("/ci/a", "/ci/b"):
        headers, body = to_structured(deploy_event("same", source))
        assert post(client, "/", body, headers | BEARER, headers["content-type"]).status_code == 200
    assert len(a2a_agent.runs) == 2


def test_a_binary_cloudevent_on_the_auto_endpoint_reaches_the_agent(
    client: Any, a2a_agent: TestAgent
) -> None:
    event = deploy_event("bin-1")
    event["datacontenttype"] = "application/json"  # becomes the Content-Type in binary mode
    headers, body = to_binary(event)

    reply = post(client, "/", body, headers | BEARER, headers["content-type"])

    assert reply.status_code == 200, reply.json
    assert reply.json["counts"] == {"dispatched": 1}
    assert "image pull error" in a2a_agent.runs[0].text


def batch(*events: CloudEvent) -> bytes:
    """Batched mode: a JSON array of structured-mode events, each serialised by the SDK."""
    return b"[" + b",".join(to_json(e) for e in events) + b"]"


def test_a_batch_of_cloudevents_dispatches_each_mapped_event(
    client: Any, a2a_agent: TestAgent
) -> None:
    other = CloudEvent({"type": "com.example.build.started", "source": "/ci", "id": "x"}, {})
    body = batch(deploy_event("b-1"), other, deploy_event("b-2"))

    reply = post(client, "/events", body, BEARER, "application/cloudevents-batch+json")

    assert reply.status_code == 200, reply.json
    assert reply.json["counts"] == {"dispatched": 2}
    assert len(a2a_agent.runs) == 2


def test_a_cloudevent_no_mapping_row_names_is_dropped_with_its_reason(
    client: Any, a2a_agent: TestAgent
) -> None:
    headers, body = to_structured(
        CloudEvent({"type": "com.example.build.started", "source": "/ci", "id": "1"}, {})
    )
    reply = post(client, "/events", body, headers | BEARER, headers["content-type"])

    assert reply.status_code == 200
    assert reply.json["counts"] == {"dropped:unmapped-cloudevent": 1}
    assert a2a_agent.runs == []


def _structured(**changes: Any) -> bytes:
    doc = json.loads(to_structured(deploy_event())[1])
    doc.update(changes)
    return json.dumps({k: v for k, v in doc.items() if v is not None}).encode()


STRUCTURED = "application/cloudevents+json"
BATCHED = "application/cloudevents-batch+json"
CLOUDEVENT_REFUSALS: list[tuple[str, str, bytes, dict[str, str], int, str]] = [
    ("old specversion", STRUCTURED, _structured(specversion="0.3"), {}, 422, "specversion"),
    ("no id", STRUCTURED, _structured(id=None), {}, 422, "id"),
    ("empty source", STRUCTURED, _structured(source=""), {}, 422, "source"),
    ("numeric type", STRUCTURED, _structured(type=7), {}, 422, "type"),
    ("bad time", STRUCTURED, _structured(time="yesterday"), {}, 422, "timestamp"),
    (
        "bad data_base64",
        STRUCTURED,
        _structured(data=None, data_base64="%%%"),
        {},
        422,
        "data_base64",
    ),
    (
        "data_base64 nested too deep",
        STRUCTURED,
        _structured(data=None, data_base64=base64.b64encode(b"[" * 100_000).decode()),
        {},
        400,
        "data_base64",
    ),
    (
        "data_base64 with 1e999",
        STRUCTURED,
        _structured(data=None, data_base64=base64.b64encode(b'{"n": 1e999}').decode()),
        {},
        400,
        "data_base64",
    ),
    ("structured array", STRUCTURED, b"[" + _structured() + b"]", {}, 422, "(body)"),
    ("batch not an array", BATCHED, _structured(), {}, 422, "(body)"),
    ("batch item not an object", BATCHED, b"[" + _structured() + b", 3]", {}, 422, "[1]"),
    ("batch item without id", BATCHED, b"[" + _structured(id=None) + b"]", {}, 422, "[0].id"),
    (
        "binary without type",
        "application/json",
        json.dumps(DEPLOY_DATA).encode(),
        {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/ci"},
        422,
        "ce-type",
    ),
    ("broken json", STRUCTURED, _structured()[:-2], {}, 400, "body"),
    ("xml", "application/cloudevents+xml", _structured(), {}, 415, "content-type"),
]


@pytest.mark.parametrize(
    ("name", "content_type", "body", "headers", "status", "field"),
    CLOUDEVENT_REFUSALS,
    ids=[case[0] for case in CLOUDEVENT_REFUSALS],
)
def test_a_malformed_cloudevent_is_refused_naming_the_attribute(
    client: Any,
    a2a_agent: TestAgent,
    name: str,
    content_type: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    field: str,
) -> None:
    reply = post(client, "/events", body, headers | BEARER, content_type)

    assert reply.status_code == status, reply.json
    assert reply.json["field"] == field
    assert a2a_agent.runs == []


def test_a_cloudevent_sent_to_a_generic_endpoint_is_refused_with_415(client: Any) -> None:
    headers, body = to_structured(deploy_event())
    reply = post(client, "/plain", body, headers | BEARER, headers["content-type"])

    assert reply.status_code == 415
    assert "does not take CloudEvents" in reply.json["error"]


def test_the_timestamp_of_a_signed_delivery_is_checked_against_now(client: Any) -> None:
    """The window is the transport's replay window (5 minutes): 4 minutes old still passes."""
    headers = signed(GENERIC, "msg_old", at=datetime.fromtimestamp(time.time() - 240, UTC))
    assert post(client, "/svix", GENERIC, headers).status_code == 200


def test_a_secret_that_is_not_whsec_base64_refuses_every_delivery(
    function_env: Callable[..., Any], http_client: Callable[[str], Any]
) -> None:
    function_env(plugins=PLUGINS, hooks=HOOKS, KHOOK_WEBHOOK_STANDARD_WEBHOOKS_SECRET="whsec_!!")
    reply = post(http_client("webhook"), "/svix", GENERIC, signed(GENERIC))

    assert reply.status_code == 401
    assert "misconfigured" in reply.json["error"]
