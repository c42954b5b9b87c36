"""A2A payloads, answers, card parsing and settings: pure functions, no server."""

from __future__ import annotations

import httpx
import pytest

from khook_core.dispatch import a2a
from khook_core.dispatch.base import Target
from khook_core.errors import ConfigError, DispatchError
from khook_core.settings import DEFAULT_KAGENT_API_URL, DispatchSettings, Settings
from khook_core.timeparse import parse_seconds as parse_go_duration
from tests.support.dispatch import PROMPT, make_request

AGENT = Target("agent", name="k8s-agent", namespace="kagent")


def test_a2a_0_3_payload_is_a_non_blocking_message_send_with_kind_and_message_id() -> None:
    body = a2a.build_payload("0.3", make_request(AGENT), "ctx-9")
    assert body["method"] == "message/send"
    message = body["params"]["message"]
    assert message["kind"] == "message"
    assert message["role"] == "user"
    assert message["messageId"] == "khook-msg-1"
    assert message["contextId"] == "ctx-9"
    assert message["parts"] == [{"kind": "text", "text": PROMPT}]
    assert message["metadata"] == {
        "khook.hook": "shop/web-restarts",
        "khook.eventId": "kubernetes:7c1e7",
        "khook.eventType": "pod-restart",
        "khook.source": "kubernetes",
        "khook.severity": "warning",
        "khook.resource": "shop/Pod/web-0",
    }
    assert body["params"]["configuration"] == {"blocking": False}


def test_a2a_1_0_payload_is_send_message_with_role_user_and_return_immediately() -> None:
    body = a2a.build_payload("1.0", make_request(AGENT), "ctx-9")
    assert body["method"] == "SendMessage"
    message = body["params"]["message"]
    assert message["role"] == "ROLE_USER"
    assert "kind" not in message
    assert message["parts"] == [{"text": PROMPT}]
    assert body["params"]["configuration"] == {"returnImmediately": True}


def test_kagent_endpoint_has_the_trailing_slash_and_the_default_cluster_url() -> None:
    dispatcher = a2a.A2ADispatcher(DispatchSettings.from_env({}))
    try:
        assert dispatcher.endpoint(AGENT) == (f"{DEFAULT_KAGENT_API_URL}/api/a2a/kagent/k8s-agent/")
        assert "svc.cluster.local" in DEFAULT_KAGENT_API_URL
        assert dispatcher.endpoint(Target("a2a", url="http://x/agent")) == "http://x/agent"
    finally:
        dispatcher.close()


@pytest.mark.parametrize(
    ("card", "wire"),
    [
        (
            {
                "supportedInterfaces": [
                    {"url": "u", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
                ]
            },
            "1.0",
        ),
        ({"protocolVersion": "0.3.0", "url": "u", "preferredTransport": "JSONRPC"}, "0.3"),
        (
            {
                "protocolVersion": "0.3.0",
                "supportedInterfaces": [{"protocolBinding": "JSONRPC", "protocolVersion": "1.0"}],
            },
            "1.0",
        ),
        ({"supportedInterfaces": [{"protocolBinding": "GRPC", "protocolVersion": "1.0"}]}, ""),
        ({"name": "no versions"}, ""),
        (["not", "a", "card"], ""),
    ],
)
def test_the_card_decides_the_wire(card: object, wire: str) -> None:
    assert a2a.card_wire(card) == wire


@pytest.mark.parametrize(
    ("result", "task_id", "state"),
    [
        ({"kind": "task", "id": "t-1", "status": {"state": "submitted"}}, "t-1", "submitted"),
        (
            {"task": {"id": "t-2", "status": {"state": "TASK_STATE_INPUT_REQUIRED"}}},
            "t-2",
            "input-required",
        ),
        ({"kind": "message", "messageId": "m", "taskId": "t-3", "parts": []}, "t-3", "message"),
        ({"message": {"messageId": "m", "parts": [{"text": "done"}]}}, "", "message"),
    ],
)
def test_results_of_both_wires_give_task_id_and_state(
    result: object, task_id: str, state: str
) -> None:
    parsed = a2a.parse_result(result, "agent x")
    assert (parsed.task_id, parsed.state) == (task_id, state)


def test_a_rejected_task_is_a_permanent_error_with_the_agents_reason() -> None:
    result = {
        "task": {
            "id": "t",
            "status": {
                "state": "TASK_STATE_REJECTED",
                "message": {"parts": [{"text": "not my job"}]},
            },
        }
    }
    with pytest.raises(DispatchError, match=r"rejected the message .*not my job"):
        a2a.parse_result(result, "agent x")


def test_json_rpc_errors_carry_code_and_text() -> None:
    response = httpx.Response(
        200,
        json={
            "jsonrpc": "2.0",
            "id": "1",
            "error": {"code": -32602, "message": "role must be ROLE_USER"},
        },
    )
    with pytest.raises(DispatchError, match=r"JSON-RPC error -32602: role must be ROLE_USER"):
        a2a.interpret(response, "1.0", "agent x")


def test_a_non_json_success_is_reported_with_its_text() -> None:
    response = httpx.Response(200, text="<html>login</html>")
    with pytest.raises(DispatchError, match=r"not JSON .*login"):
        a2a.interpret(response, "1.0", "agent x")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("120s", 120.0), ("1m30s", 90.0), ("500ms", 0.5), ("2.5", 2.5), ("1h", 3600.0)],
)
def test_go_durations_are_read_as_khook_reads_them(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "10x", "s10", "1m30"])
def test_invalid_go_durations_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_go_duration(text)


def test_kagent_variables_keep_khooks_names_and_legacy_alias(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAGENT_API_BASE_URL", "http://kagent.example:8083/")
    monkeypatch.setenv("KAGENT_USER_ID", "ops@example.com")
    monkeypatch.setenv("KAGENT_API_TIMEOUT", "1m")
    monkeypatch.setenv("KHOOK_A2A_VERSION", "0.3")
    monkeypatch.setenv("KHOOK_A2A_TOKEN", "s3cret")
    monkeypatch.setenv("KHOOK_A2A_HEADERS", '{"X-Tenant": "shop"}')
    settings = Settings.from_env().dispatchers
    assert settings.kagent_api_url == "http://kagent.example:8083"
    assert settings.kagent_user_id == "ops@example.com"
    assert settings.kagent_api_timeout == 60.0
    assert settings.a2a_version == "0.3"
    assert "s3cret" not in repr(settings)
    dispatcher = a2a.A2ADispatcher(settings)
    try:
        assert dispatcher.headers()["Authorization"] == "Bearer s3cret"
        assert dispatcher.headers()["X-Tenant"] == "shop"
        assert dispatcher.headers()["X-User-Id"] == "ops@example.com"
    finally:
        dispatcher.close()


def test_invalid_settings_name_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAGENT_API_TIMEOUT", "400s")
    monkeypatch.setenv("KHOOK_A2A_VERSION", "2.0")
    with pytest.raises(ConfigError) as info:
        Settings.from_env()
    text = str(info.value)
    assert "KAGENT_API_TIMEOUT" in text
    assert "KHOOK_A2A_VERSION" in text


@pytest.mark.parametrize(
    ("response", "wrong_wire"),
    [
        # kagent: plain-text 400 for an A2A-Version it does not serve (wording not pinned down)
        (httpx.Response(400, text="unsupported A2A protocol version '0.3'"), True),
        (httpx.Response(400, text="A2A-Version header must be 1.0"), True),
        # a2a-sdk 1.x: 1.0 method with a 0.3 header; its 0.3 adapter sends the text as -32603
        (
            httpx.Response(
                200,
                json={
                    "jsonrpc": "2.0",
                    "id": "1",
                    "error": {
                        "code": -32009,
                        "message": "A2A version '0.3' is not supported by this handler. "
                        "Expected version '1.0'.",
                    },
                },
            ),
            True,
        ),
        (
            httpx.Response(
                200,
                json={
                    "jsonrpc": "2.0",
                    "id": "1",
                    "error": {
                        "code": -32603,
                        "message": "A2A version '1.0' is not supported by this handler. "
                        "Expected version '0.3'.",
                    },
                },
            ),
            True,
        ),
        # a 0.3-only server asked for SendMessage
        (
            httpx.Response(
                200,
                json={"jsonrpc": "2.0", "id": "1", "error": {"code": -32601, "message": "x"}},
            ),
            True,
        ),
        (httpx.Response(400, text="invalid message: parts must not be empty"), False),
        (httpx.Response(400, text="Agent name not provided"), False),
        (
            httpx.Response(
                200,
                json={"jsonrpc": "2.0", "id": "1", "error": {"code": -32602, "message": "bad"}},
            ),
            False,
        ),
    ],
)
def test_only_a_version_or_method_mismatch_counts_as_the_wrong_wire(
    response: httpx.Response, wrong_wire: bool
) -> None:
    with pytest.raises(DispatchError) as info:
        a2a.interpret(response, "1.0", "agent x")
    assert isinstance(info.value, a2a._WrongWire) is wrong_wire
    if response.status_code == 400 and not wrong_wire:
        assert str(info.value) == f"agent x: HTTP 400: {response.text}"
