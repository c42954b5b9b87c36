"""kagent HITL v1 requests read from a status message, and decisions checked as kagent checks
them (a decision kagent would refuse fails the task for good, so it is refused here first)."""

from __future__ import annotations

from typing import Any

import pytest

from khook_core.approvals import hitl
from khook_core.approvals.deciding import Decision, build
from khook_core.approvals.hitl import URI, DecisionError
from khook_core.state.base import ApprovalRecord

TOOLS: dict[str, Any] = {
    "type": "tool_approval_request",
    "tools": [{"id": "conf-1", "name": "restart_pod"}, {"id": "conf-2", "name": "scale"}],
}
ASK: dict[str, Any] = {
    "type": "ask_user_request",
    "id": "conf-9",
    "questions": [
        {"question": "Which namespace?", "choices": ["shop", "dev"], "multiple": False},
        {"question": "Which checks?", "choices": ["logs", "events", "metrics"], "multiple": True},
    ],
}


def paused(body: dict[str, Any], *, listed: bool = True) -> dict[str, Any]:
    return {
        "messageId": "m-7",
        "parts": [{"text": "needs approval"}],
        "extensions": [URI] if listed else [],
        "metadata": {URI: body},
    }


def test_a_request_counts_only_with_the_uri_listed_and_an_object_of_a_known_type() -> None:
    request = hitl.request_of(paused(TOOLS))
    assert request is not None
    assert (request.kind, request.body) == ("tool_approval", TOOLS)
    assert hitl.request_of(paused(TOOLS, listed=False)) is None
    assert hitl.request_of(paused({"type": "something_else"})) is None
    assert hitl.request_of({"parts": [{"text": "Which namespace?"}]}) is None
    assert hitl.request_of(None) is None


def test_a_paused_sub_agent_is_answered_with_its_own_call_ids() -> None:
    body = {**TOOLS, "nested": {"subagent_name": "k8s", "tools": [{"id": "sub-1"}]}}
    assert [t["id"] for t in hitl.pending_tools(body)] == ["sub-1"]


def test_every_pending_call_must_be_answered_exactly_once() -> None:
    with pytest.raises(DecisionError, match="unanswered: conf-2"):
        hitl.tool_decision(TOOLS, {"conf-1": True}, {})
    with pytest.raises(DecisionError, match="not pending in this approval: conf-3"):
        hitl.tool_decision(TOOLS, {"conf-1": True, "conf-2": True, "conf-3": True}, {})
    assert hitl.tool_decision(TOOLS, {"conf-2": False, "conf-1": True}, {"conf-2": "no"}) == {
        "type": "tool_approval_response",
        "approvals": [
            {"id": "conf-1", "approved": True},
            {"id": "conf-2", "approved": False, "rejection_reason": "no"},
        ],
    }


def test_questions_take_one_answer_each_among_their_choices() -> None:
    assert hitl.ask_decision(ASK, ["shop", "logs, events"]) == {
        "type": "ask_user_response",
        "id": "conf-9",
        "answers": [{"answer": ["shop"]}, {"answer": ["logs", "events"]}],
    }
    with pytest.raises(DecisionError, match="2 question"):
        hitl.ask_decision(ASK, ["shop"])
    with pytest.raises(DecisionError, match="prod is not a choice"):
        hitl.ask_decision(ASK, ["prod", "logs"])


def approval(kind: str, request: str) -> ApprovalRecord:
    from datetime import UTC, datetime

    at = datetime(2026, 1, 5, tzinfo=UTC)
    return ApprovalRecord(
        id="a1",
        task_ref="e t",
        task_id="t",
        context_id="c",
        endpoint="e",
        wire="1.0",
        hook="shop/h",
        key="k",
        agent="kagent/a",
        kind=kind,
        request=request,
        text="",
        opened_at=at,
        deadline=at,
    )


def test_the_decision_names_its_state_and_refuses_what_does_not_fit_the_request() -> None:
    import json

    tools = approval("tool_approval", json.dumps(TOOLS))
    assert build(tools, Decision(by="ana", approve=True))[0] == "approved"
    assert build(tools, Decision(by="ana", approve=False, reason="healthy"))[2] == (
        "Rejected: healthy"
    )
    assert build(tools, Decision(by="ana", calls={"conf-1": True, "conf-2": False}))[0] == "mixed"
    with pytest.raises(DecisionError, match="not answers"):
        build(tools, Decision(by="ana", answers=("shop",)))
    ask = approval("ask_user", json.dumps(ASK))
    assert build(ask, Decision(by="ana", answers=("dev", "metrics")))[0] == "answered"
    with pytest.raises(DecisionError, match="one --answer for each"):
        build(ask, Decision(by="ana", approve=True))
    with pytest.raises(DecisionError, match="answer the agent directly"):
        build(approval("plain", ""), Decision(by="ana", approve=True))
