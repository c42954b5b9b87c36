"""The demo agent: kagent's paths, both A2A wires, and khook's own dispatcher as the client."""

from __future__ import annotations

import io
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from khook_core.dispatch.a2a import A2ADispatcher
from khook_core.dispatch.base import Target
from khook_local.agent import DemoAgent
from tests.support.dispatch import PROMPT, fast_settings, make_request

AGENT_PATH = "/api/a2a/kagent/k8s-agent/"


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[DemoAgent]:
    agent = DemoAgent(tmp_path / "agent-prompts.jsonl", out=io.StringIO()).start()
    yield agent
    agent.stop()


def rpc(
    agent: DemoAgent,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
    path: str = AGENT_PATH,
) -> dict[str, Any]:
    request = urllib.request.Request(
        agent.url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=5) as reply:
        assert reply.status == 200
        answer: dict[str, Any] = json.loads(reply.read())
        return answer


def send_0_3(message_id: str = "khook-1", **message: Any) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": "r-1",
        "method": "message/send",
        "params": {
            "message": {
                "kind": "message",
                "role": "user",
                "messageId": message_id,
                "contextId": "ctx-1",
                "parts": [{"kind": "text", "text": "Pod web-0 restarted"}],
                **message,
            },
            "configuration": {"blocking": False},
        },
    }


def send_1_0(message_id: str = "khook-2", **message: Any) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": "r-2",
        "method": "SendMessage",
        "params": {
            "message": {
                "role": "ROLE_USER",
                "messageId": message_id,
                "contextId": "ctx-2",
                "parts": [{"text": "Disk full on db-1"}],
                "metadata": {"khook.hook": "monitoring/alerts"},
                **message,
            },
            "configuration": {"returnImmediately": True},
        },
    }


def prompts(agent: DemoAgent) -> list[dict[str, Any]]:
    return [json.loads(line) for line in agent.prompts_path.read_text().splitlines()]


def test_a2a_0_3_message_send_returns_a_submitted_task_and_shows_the_prompt(agent):
    answer = rpc(agent, send_0_3(), {"X-User-Id": "admin@kagent.dev"})

    task = answer["result"]
    assert answer["id"] == "r-1"
    assert task["kind"] == "task"
    assert task["status"]["state"] == "submitted"
    assert task["contextId"] == "ctx-1"
    assert task["history"][0]["messageId"] == "khook-1"
    [line] = prompts(agent)
    assert line["agent"] == "kagent/k8s-agent"
    assert line["wire"] == "0.3"
    assert line["messageId"] == "khook-1"
    assert line["taskId"] == task["id"]
    assert line["userId"] == "admin@kagent.dev"
    assert line["prompt"] == "Pod web-0 restarted"
    assert isinstance(agent.out, io.StringIO)
    console = agent.out.getvalue()
    assert "agent kagent/k8s-agent received a prompt (A2A 0.3, messageId khook-1)" in console
    assert "    Pod web-0 restarted" in console


def test_a2a_1_0_send_message_needs_the_version_header_and_answers_in_1_0_shape(agent):
    refused = rpc(agent, send_1_0())
    assert refused["error"]["code"] == -32009

    answer = rpc(agent, send_1_0(), {"A2A-Version": "1.0"})

    task = answer["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_SUBMITTED"
    assert task["contextId"] == "ctx-2"
    assert task["history"][0]["role"] == "ROLE_USER"
    [line] = prompts(agent)
    assert (line["wire"], line["prompt"]) == ("1.0", "Disk full on db-1")
    assert line["metadata"] == {"khook.hook": "monitoring/alerts"}


@pytest.mark.parametrize(
    ("body", "headers", "code"),
    [
        (send_1_0(role="user"), {"A2A-Version": "1.0"}, -32602),
        (send_0_3(message_id=""), {}, -32600),
        (send_0_3(), {"A2A-Version": "1.0"}, -32601),
        (send_0_3(parts=[]), {}, -32602),
        ({"jsonrpc": "2.0", "id": 1, "method": "tasks/cancel", "params": {}}, {}, -32601),
        ({"id": 1, "method": "message/send"}, {}, -32600),
    ],
    ids=["1.0-role", "0.3-no-message-id", "0.3-method-on-1.0", "no-text", "unknown", "not-rpc"],
)
def test_invalid_requests_get_json_rpc_errors(agent, body, headers, code):
    assert rpc(agent, body, headers)["error"]["code"] == code
    assert not agent.prompts_path.exists()


def test_a_repeated_message_id_gets_the_same_task_and_no_new_run(agent):
    first = rpc(agent, send_0_3("khook-same"))["result"]
    again = rpc(agent, send_0_3("khook-same"))["result"]

    assert again["id"] == first["id"]
    assert [line["repeat"] for line in prompts(agent)] == [False, True]
    fetched = rpc(
        agent, {"jsonrpc": "2.0", "id": 3, "method": "tasks/get", "params": {"id": first["id"]}}
    )
    assert fetched["result"]["id"] == first["id"]


def test_the_agent_card_offers_both_wires_on_every_agent_path(agent):
    with urllib.request.urlopen(
        agent.url + "/api/a2a/ns/any-agent/.well-known/agent-card.json", timeout=5
    ) as reply:
        card = json.loads(reply.read())
    assert card["name"] == "ns/any-agent"
    assert {i["protocolVersion"] for i in card["supportedInterfaces"]} == {"1.0", "0.3"}
    assert card["url"].endswith("/api/a2a/ns/any-agent/")


@pytest.mark.parametrize("wire", ["auto", "1.0", "0.3"])
def test_khooks_dispatcher_delivers_to_the_demo_agent_on_each_wire(agent, wire):
    settings = fast_settings(kagent_api_url=agent.url, a2a_version=wire)
    dispatcher = A2ADispatcher(settings)
    try:
        result = dispatcher.dispatch(make_request(Target("agent", "k8s-agent", "kagent")))
    finally:
        dispatcher.close()

    assert result.state == "submitted"
    [line] = prompts(agent)
    assert line["wire"] == ("1.0" if wire == "auto" else wire)
    assert line["taskId"] == result.task_id
    assert line["prompt"] == PROMPT
    assert line["messageId"] == "khook-msg-1"
    assert line["metadata"]["khook.hook"] == "shop/web-restarts"


def test_an_oom_kill_task_asks_for_one_tool_approval_and_completes_once_decided(tmp_path):
    from khook_core.approvals import hitl

    agent = DemoAgent(tmp_path / "prompts.jsonl", out=io.StringIO(), complete_after=0).start()
    try:
        headers = {"A2A-Version": "1.0", "A2A-Extensions": hitl.URI}
        metadata = {"khook.eventType": "oom-kill", "khook.resource": "shop/Pod/web-0"}
        task = rpc(agent, send_1_0(metadata=metadata), headers)["result"]["task"]
        get = {"jsonrpc": "2.0", "id": "g", "method": "GetTask", "params": {"id": task["id"]}}
        paused = rpc(agent, get, headers)["result"]["task"]
        assert paused["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
        request = hitl.request_of(paused["status"]["message"])
        assert request is not None
        [tool] = hitl.pending_tools(request.body)
        assert (tool["name"], tool["args"]) == ("restart_pod", {"resource": "shop/Pod/web-0"})

        decision = hitl.message(
            "1.0",
            message_id="d-1",
            task_id=task["id"],
            context_id=task["contextId"],
            text="Approved",
            decision=hitl.tool_decision(request.body, {tool["id"]: True}, {}),
        )
        body = {
            "jsonrpc": "2.0",
            "id": "d",
            "method": "SendMessage",
            "params": {"message": decision},
        }
        assert "error" not in rpc(agent, body, headers)
        done = rpc(agent, get, headers)["result"]["task"]
        assert done["status"]["state"] == "TASK_STATE_COMPLETED"
        assert "The restart_pod call was approved." in done["artifacts"][0]["parts"][0]["text"]
        assert "error" in rpc(agent, body, headers)  # the task no longer waits for a decision
    finally:
        agent.stop()


def test_without_the_extension_an_oom_kill_task_just_investigates(agent):
    metadata = {"khook.eventType": "oom-kill"}
    task = rpc(agent, send_1_0(metadata=metadata), {"A2A-Version": "1.0"})["result"]["task"]
    get = {"jsonrpc": "2.0", "id": "g", "method": "GetTask", "params": {"id": task["id"]}}
    state = rpc(agent, get, {"A2A-Version": "1.0"})["result"]["task"]["status"]["state"]
    assert state == "TASK_STATE_WORKING"
