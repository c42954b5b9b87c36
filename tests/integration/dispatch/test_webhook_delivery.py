"""The webhook dispatcher against a local HTTP receiver: signing, retries, time budgets, bodies."""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path

import pytest

from khook_core.bodytemplate import COMPILED_BODY, CompiledBody
from khook_core.dispatch.webhook import WebhookDispatcher
from khook_core.errors import DispatchError, TransientError
from khook_core.hooks import load_hooks
from tests.support.dispatch import PROMPT, make_event, make_request
from tests.support.webhook_receiver import SECRET, WebhookReceiver, webhook


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


def test_a_429_waits_for_retry_after(
    webhook_receiver: WebhookReceiver, dispatcher: WebhookDispatcher
) -> None:
    webhook_receiver.answer(429, "slow down", Retry_After="0")
    dispatcher.dispatch(make_request(webhook(webhook_receiver.url)))
    assert len(webhook_receiver.received) == 2


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


def test_persistent_5xx_becomes_a_transient_error(
    webhook_receiver: WebhookReceiver, dispatcher: WebhookDispatcher
) -> None:
    for _ in range(3):
        webhook_receiver.answer(502, "bad gateway")
    with pytest.raises(TransientError, match="HTTP 502: bad gateway"):
        dispatcher.dispatch(make_request(webhook(webhook_receiver.url)))
    assert len(webhook_receiver.received) == 3


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


@pytest.mark.parametrize("budget", [0.0, -1.0])
def test_a_spent_time_budget_sends_no_webhook(
    webhook_receiver: WebhookReceiver, dispatcher: WebhookDispatcher, budget: float
) -> None:
    with pytest.raises(TransientError, match="time budget") as info:
        dispatcher.dispatch(make_request(webhook(webhook_receiver.url), time_budget=budget))
    assert "hook shop/web-restarts" in str(info.value)
    assert webhook_receiver.received == []


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
