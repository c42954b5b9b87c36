"""The webhook dispatcher against a local HTTP receiver, and its body templates."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from khook_core import prompt
from khook_core.dispatch import build_dispatcher
from khook_core.dispatch.base import Target, redact_url
from khook_core.dispatch.routing import RoutingDispatcher
from khook_core.dispatch.webhook import (
    COMPILED_BODY,
    CompiledBody,
    WebhookDispatcher,
    compile_body,
    default_body,
    render_body,
    validate_body_template,
)
from khook_core.errors import DispatchError, TransientError
from khook_core.event import Resource
from khook_core.hooks import load_hooks
from khook_core.prompt import TemplateError
from khook_core.settings import Settings
from tests.dispatch.conftest import WebhookReceiver
from tests.dispatch.helpers import PROMPT, fast_settings, make_event, make_request

SECRET = "webhook-signing-key"


def webhook(url: str, **options: Any) -> Target:
    return Target("webhook", url=url, options={"url": url, "headers": {}, **options})


@pytest.fixture
def dispatcher() -> Iterator[WebhookDispatcher]:
    made = WebhookDispatcher(
        fast_settings(), environ={"KHOOK_TEST_HMAC": SECRET, "RECEIVER_TOKEN": "tok-1"}
    )
    yield made
    made.close()


@pytest.mark.integration
def test_default_body_is_signed_and_carries_the_idempotency_key(
    webhook_receiver: WebhookReceiver, dispatcher: WebhookDispatcher
) -> None:
    target = webhook(
        webhook_receiver.url,
        hmacSecretEnv="KHOOK_TEST_HMAC",
        headers={"Authorization": "${RECEIVER_TOKEN}", "X-Team": "shop"},
    )
    result = dispatcher.dispatch(make_request(target))

    assert result.state == "delivered"
    [got] = webhook_receiver.received
    expected = hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-signature-256"] == f"sha256={expected}"
    assert got.headers["idempotency-key"] == "khook-msg-1"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["authorization"] == "tok-1"
    assert got.headers["x-team"] == "shop"
    assert got.json() == {
        "event": {
            "id": "kubernetes:7c1e7",
            "source": "kubernetes",
            "type": "pod-restart",
            "severity": "warning",
            "resource": {"kind": "Pod", "namespace": "shop", "name": "web-0"},
            "reason": "BackOff",
            "message": "Back-off restarting failed container app",
            "count": 7,
            "timestamp": "2026-01-05T10:31:12Z",
        },
        "hook": {"namespace": "shop", "name": "web-restarts"},
        "prompt": PROMPT,
    }


@pytest.mark.integration
def test_a_503_is_retried_and_delivered_once(
    webhook_receiver: WebhookReceiver, dispatcher: WebhookDispatcher
) -> None:
    webhook_receiver.answer(503, "busy")
    target = webhook(webhook_receiver.url, hmacSecretEnv="KHOOK_TEST_HMAC")
    assert dispatcher.dispatch(make_request(target)).detail == "HTTP 200"
    first, second = webhook_receiver.received
    assert first.body == second.body
    assert first.headers["x-signature-256"] == second.headers["x-signature-256"]
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]


@pytest.mark.integration
def test_a_429_waits_for_retry_after(
    webhook_receiver: WebhookReceiver, dispatcher: WebhookDispatcher
) -> None:
    webhook_receiver.answer(429, "slow down", Retry_After="0")
    dispatcher.dispatch(make_request(webhook(webhook_receiver.url)))
    assert len(webhook_receiver.received) == 2


@pytest.mark.integration
def test_a_400_is_not_retried_and_names_hook_and_host_only(
    webhook_receiver: WebhookReceiver, dispatcher: WebhookDispatcher
) -> None:
    webhook_receiver.answer(400, "invalid_payload")
    with pytest.raises(DispatchError) as info:
        dispatcher.dispatch(make_request(webhook(webhook_receiver.url)))
    message = str(info.value)
    assert "HTTP 400: invalid_payload" in message
    assert "hook shop/web-restarts" in message
    assert "token=abc" not in message
    assert "/hooks/khook" not in message
    assert len(webhook_receiver.received) == 1


@pytest.mark.integration
def test_persistent_5xx_becomes_a_transient_error(
    webhook_receiver: WebhookReceiver, dispatcher: WebhookDispatcher
) -> None:
    for _ in range(3):
        webhook_receiver.answer(502, "bad gateway")
    with pytest.raises(TransientError, match="HTTP 502: bad gateway"):
        dispatcher.dispatch(make_request(webhook(webhook_receiver.url)))
    assert len(webhook_receiver.received) == 3


@pytest.mark.integration
def test_the_invocations_time_budget_bounds_a_slow_receiver(
    webhook_receiver: WebhookReceiver, dispatcher: WebhookDispatcher
) -> None:
    webhook_receiver.delay = 1.0
    # The dispatcher alone would wait (5 s read timeout, retries, 45 s budget).
    started = time.monotonic()
    with pytest.raises(TransientError, match="ReadTimeout"):
        dispatcher.dispatch(make_request(webhook(webhook_receiver.url), time_budget=0.3))
    assert time.monotonic() - started < 0.9
    assert len(webhook_receiver.received) == 1


@pytest.mark.integration
@pytest.mark.parametrize("budget", [0.0, -1.0])
def test_a_spent_time_budget_sends_no_webhook(
    webhook_receiver: WebhookReceiver, dispatcher: WebhookDispatcher, budget: float
) -> None:
    with pytest.raises(TransientError, match="time budget") as info:
        dispatcher.dispatch(make_request(webhook(webhook_receiver.url), time_budget=budget))
    assert "hook shop/web-restarts" in str(info.value)
    assert webhook_receiver.received == []


@pytest.mark.integration
def test_a_template_body_is_rendered_with_placeholders_and_the_prompt(
    webhook_receiver: WebhookReceiver, dispatcher: WebhookDispatcher
) -> None:
    body = {
        "text": "khook: {{.EventType}} {{ .Namespace }}/{{.ResourceName}}",
        "details": {
            "prompt": "{{.Prompt}}",
            "why": "{{.Message}}",
            "n": 3,
            "tags": ["{{.Severity}}", True, None],
        },
    }
    event = make_event(message='He said "stop"\n} {"injected": true')
    dispatcher.dispatch(make_request(webhook(webhook_receiver.url, body=body), event=event))
    [got] = webhook_receiver.received
    assert got.json() == {
        "text": "khook: pod-restart shop/web-0",
        "details": {
            "prompt": PROMPT,
            "why": 'He said "stop"\n} {"injected": true',
            "n": 3,
            "tags": ["warning", True, None],
        },
    }


def test_an_unknown_placeholder_in_a_body_is_a_permanent_error(
    dispatcher: WebhookDispatcher,
) -> None:
    target = webhook("http://127.0.0.1:9/", body={"text": "{{.Nope}}"})
    with pytest.raises(DispatchError, match=r"webhook.body: unknown placeholder \{\{\.Nope\}\}"):
        dispatcher.dispatch(make_request(target))
    with pytest.raises(TemplateError):
        validate_body_template({"a": ["{{.Prompt}} {{.Nope}}"]})


def test_a_missing_signing_secret_is_reported_by_variable_name(
    dispatcher: WebhookDispatcher,
) -> None:
    target = webhook("http://127.0.0.1:9/", hmacSecretEnv="KHOOK_UNSET_SECRET")
    with pytest.raises(DispatchError, match=r"KHOOK_UNSET_SECRET .*not set"):
        dispatcher.dispatch(make_request(target))


def test_a_missing_header_secret_is_reported_by_variable_name(
    dispatcher: WebhookDispatcher,
) -> None:
    target = webhook("http://127.0.0.1:9/", headers={"Authorization": "${NOPE_TOKEN}"})
    with pytest.raises(DispatchError, match=r"header Authorization .*NOPE_TOKEN"):
        dispatcher.dispatch(make_request(target))


def test_a_non_json_value_in_a_body_is_rejected_before_sending(
    dispatcher: WebhookDispatcher,
) -> None:
    target = webhook("http://127.0.0.1:9/", body={"x": float("nan")})
    with pytest.raises(DispatchError, match="not valid JSON"):
        dispatcher.dispatch(make_request(target))


def test_compiled_templates_render_whitespace_and_literals_unchanged() -> None:
    compiled = compile_body({"a": "  ", "b": "", "c": "plain", "d": 1.5})
    assert render_body(compiled, make_request(webhook("http://x/"))) == {
        "a": "  ",
        "b": "",
        "c": "plain",
        "d": 1.5,
    }


def test_a_notification_body_shows_values_themselves_not_prompt_pointers() -> None:
    event = make_event().model_copy(update={
        "tags": {"instance": "10.0.0.1:9100"},
        "reason": "Kube Pod Crash\u202eLooping",
        "message": "line one\x07 and more",
    })
    compiled = compile_body({"text": "{{.Reason}} on {{.Tags.instance}}: {{.Message}}"})

    body = render_body(compiled, make_request(webhook("http://x/"), event=event))

    # A webhook target is a notification, not an agent: values are shown as they are, control
    # and bidi characters escaped visibly (never removed), letters of every script kept.
    assert body == {
        "text": "Kube Pod Crash\\u202eLooping on 10.0.0.1:9100: line one\\u0007 and more"
    }


def test_the_default_body_cleans_every_event_string_the_same_way() -> None:
    event = make_event().model_copy(
        update={
            "reason": "Back\u200bOff",
            "message": "line one\nline two\x07 caf\u00e9",
            "resource": Resource(kind="Pod", name="web\u202e-0\n" + "x" * 500, namespace="shop"),
        }
    )
    body = default_body(make_request(webhook("http://x/"), event=event))["event"]
    assert body["reason"] == "Back\\u200bOff"
    assert body["message"] == "line one\nline two\\u0007 caf\u00e9"  # people read it
    assert body["resource"]["name"].startswith("web\\u202e-0\\nxxx")
    assert body["resource"]["name"].endswith("…")
    assert len(body["resource"]["name"]) == prompt.MAX_FIELD_CHARS


def test_redacted_urls_keep_scheme_and_host() -> None:
    assert redact_url("https://hooks.slack.com/services/T0/B0/XYZ") == "https://hooks.slack.com/…"
    assert redact_url("https://user:pw@example.com/") == "https://example.com"


def test_routing_sends_by_target_kind_over_one_client(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.host}{request.url.path}")
        if request.url.path.endswith("agent-card.json"):
            return httpx.Response(404)
        if request.url.host == "agent.test":
            return httpx.Response(
                200,
                json={
                    "jsonrpc": "2.0",
                    "id": "1",
                    "result": {"task": {"id": "t-9", "status": {"state": "TASK_STATE_SUBMITTED"}}},
                },
            )
        return httpx.Response(204)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    routing = RoutingDispatcher(fast_settings(kagent_api_url="http://agent.test"), client=client)
    assert routing.a2a.client is routing.webhook.client is client
    agent = routing.dispatch(make_request(Target("agent", name="a", namespace="n")))
    hook = routing.dispatch(make_request(webhook("http://sink.test/in")))
    assert (agent.task_id, agent.state) == ("t-9", "submitted")
    assert hook.detail == "HTTP 204"
    assert seen[-1] == "POST sink.test/in"
    routing.close()
    assert not client.is_closed  # a shared client belongs to whoever passed it in
    client.close()

    monkeypatch.setenv("KAGENT_API_URL", "http://kagent.example:8083")
    auto = build_dispatcher(Settings.from_env())
    assert isinstance(auto, RoutingDispatcher)
    assert auto.settings.kagent_api_url == "http://kagent.example:8083"
    auto.close()


@pytest.mark.integration
def test_a_hooks_body_is_compiled_at_load_and_sent_as_compiled(
    tmp_path: Path, webhook_receiver: WebhookReceiver, dispatcher: WebhookDispatcher
) -> None:
    path = tmp_path / "hooks.yaml"
    path.write_text(f"""\
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {{name: web-restarts, namespace: shop}}
spec:
  eventConfigurations:
  - eventType: pod-restart
    webhook:
      url: {webhook_receiver.url}
      body: {{text: "{{{{.ResourceName}}}} restarted", details: ["{{{{.Prompt}}}}", 3]}}
    prompt: "Pod {{{{.ResourceName}}}} restarted"
""")
    [rule] = load_hooks([path], {"pod-restart"}).rules
    assert isinstance(rule.target.options[COMPILED_BODY], CompiledBody)

    dispatcher.dispatch(make_request(rule.target))

    [got] = webhook_receiver.received
    assert got.json() == {"text": "web-0 restarted", "details": [PROMPT, 3]}
