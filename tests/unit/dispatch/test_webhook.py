"""The webhook dispatcher's body templates, secrets and routing, without a receiver."""

from __future__ import annotations

import httpx
import pytest

from khook_core import prompt
from khook_core.bodytemplate import compile_body, validate_body_template
from khook_core.dispatch import build_dispatcher
from khook_core.dispatch.base import Target, redact_url
from khook_core.dispatch.routing import RoutingDispatcher
from khook_core.dispatch.webhook import WebhookDispatcher, default_body, render_body
from khook_core.errors import DispatchError
from khook_core.event import Resource
from khook_core.prompt import TemplateError
from khook_core.settings import Settings
from tests.support.dispatch import fast_settings, make_event, make_request
from tests.support.webhook_receiver import webhook


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
    event = make_event().model_copy(
        update={
            "tags": {"instance": "10.0.0.1:9100"},
            "reason": "Kube Pod Crash\u202eLooping",
            "message": "line one\x07 and more",
        }
    )
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
