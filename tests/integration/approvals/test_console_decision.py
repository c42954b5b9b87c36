"""Deciding an approval from the console: ``POST /api/v1/approvals/{id}/decision``.

functions/console (its real functions-framework app) on the same SQLite state file as the
kubernetes and sweep functions of ``test_hitl_loop``, the a2a-sdk test agent pausing its task
for two tool calls; the decision goes through ``khook approve``'s path and completes the task.
"""

from __future__ import annotations

import json
from typing import Any

import functions_framework
import pytest

from khook_core.runtime import get_runtime
from tests.support.a2a_agent import TestAgent
from tests.support.functions import REPO
from tests.support.sweep import tick_until

from ..tracking.test_polling import audit
from .test_hitl_loop import decisions_sent, functions, paused, state

__all__ = ["functions", "state"]  # fixtures, used by name

TOKEN = "decide-token"
HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "X-Khook-Console": "1",
    "Content-Type": "application/json",
}


@pytest.fixture
def wire() -> str:
    return "1.0"


@pytest.fixture
def console(functions: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("KHOOK_CONSOLE_TOKEN", TOKEN)
    main = REPO / "functions" / "console" / "main.py"
    app = functions_framework.create_app("handle", str(main), "http")  # type: ignore[no-untyped-call]
    return app.test_client()


def post(console: Any, id: str, body: Any, headers: dict[str, str] | None = None, **kw: Any) -> Any:
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return console.post(
        f"/api/v1/approvals/{id}/decision",
        data=data,
        headers=HEADERS if headers is None else headers,
        **kw,
    )


def test_without_the_apis_authentication_or_csrf_headers_nothing_is_decided(
    functions: tuple[Any, Any], console: Any, a2a_agent: TestAgent
) -> None:
    approval = paused(*functions)
    approve = {"approve": True}
    bare = {k: v for k, v in HEADERS.items() if k != "Authorization"}
    refusals = [
        (post(console, approval.id, approve, bare), 401, "authorization"),
        (
            post(console, approval.id, approve, {**HEADERS, "Authorization": "Bearer nope"}),
            403,
            "authorization",
        ),
        (
            post(console, approval.id, approve, environ_base={"REMOTE_ADDR": "10.1.2.3"}),
            403,
            "client",
        ),
        (
            console.post(
                f"/api/v1/approvals/{approval.id}/decision",
                data={"approve": "true"},  # a cross-site form post
                headers={"Authorization": HEADERS["Authorization"], "X-Khook-Console": "1"},
            ),
            415,
            "content-type",
        ),
        (
            post(
                console,
                approval.id,
                approve,
                {k: v for k, v in HEADERS.items() if k != "X-Khook-Console"},
            ),
            403,
            "x-khook-console",
        ),
        (console.get(f"/api/v1/approvals/{approval.id}/decision", headers=HEADERS), 405, "method"),
    ]
    for answer, status, field in refusals:
        assert answer.mimetype == "application/json"
        assert (answer.status_code, answer.get_json()["field"]) == (status, field), (
            answer.get_json()
        )
    assert refusals[0][0].headers["WWW-Authenticate"].startswith("Bearer")
    assert refusals[-1][0].headers["Allow"] == "POST"
    preflight = console.options(
        f"/api/v1/approvals/{approval.id}/decision",
        headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"},
    )
    assert not any(h.lower().startswith("access-control-") for h, _ in preflight.headers.items())
    assert decisions_sent(a2a_agent) == []
    stored = get_runtime().approval_store().get_approval(id=approval.id)
    assert stored is not None
    assert stored.is_open


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"calls": {"conf-1": "approve"}}, "calls"),  # conf-2 left unanswered
        ({"calls": {"conf-1": "approve", "conf-2": "maybe"}}, "calls.conf-2"),
        ({"approve": "yes"}, "approve"),
        ({"approve": True, "answers": ["x"]}, "decision"),
        ({}, "decision"),
        ({"approve": True, "by": "mallory"}, "by"),
        ({"approve": True, "reason": 3}, "reason"),
        ({"answers": ["shop"]}, "decision"),  # a tool approval takes no answers
        ("{not json", "body"),
        ([True], "body"),
    ],
)
def test_a_partial_or_malformed_decision_is_400_naming_the_field_and_nothing_is_sent(
    functions: tuple[Any, Any], console: Any, a2a_agent: TestAgent, body: Any, field: str
) -> None:
    approval = paused(*functions)
    answer = post(console, approval.id, body)
    assert (answer.status_code, answer.get_json()["field"]) == (400, field), answer.get_json()
    assert decisions_sent(a2a_agent) == []
    stored = get_runtime().approval_store().get_approval(id=approval.id)
    assert stored is not None
    assert stored.is_open


def test_a_decision_reaches_the_paused_task_once_and_a_second_is_409(
    functions: tuple[Any, Any], console: Any, a2a_agent: TestAgent
) -> None:
    kubernetes, sweep = functions
    approval = paused(kubernetes, sweep)
    assert post(console, "nope", {"approve": True}).status_code == 404

    answer = post(
        console,
        approval.id,
        {"calls": {"conf-1": "approve", "conf-2": "reject"}, "reason": "keep 2 replicas"},
        {**HEADERS, "X-Khook-User": "ana"},
    )
    assert answer.status_code == 200, answer.get_json()
    decided = answer.get_json()["approval"]
    assert (decided["state"], decided["decided_by"], decided["sent"]) == (
        "mixed",
        "ana (console)",
        "sent",
    )
    again = post(console, approval.id, {"approve": True})
    assert again.status_code == 409
    assert "already mixed by ana (console)" in again.get_json()["error"]

    tick_until(sweep, lambda: any(f.outcome == "task:completed" for f in audit()))
    [sent] = decisions_sent(a2a_agent)
    assert (sent["message"]["taskId"], sent["message"]["contextId"]) == (
        approval.task_id,
        approval.context_id,
    )
    assert a2a_agent.decisions == [
        {
            "type": "tool_approval_response",
            "approvals": [
                {"id": "conf-1", "approved": True},
                {"id": "conf-2", "approved": False, "rejection_reason": "keep 2 replicas"},
            ],
        }
    ]
    recorded = next(f for f in audit() if f.outcome == "approval:mixed")
    assert recorded.extra["decided_by"] == "ana (console)"


def test_without_a_user_header_the_token_holder_is_recorded_as_console(
    functions: tuple[Any, Any], console: Any, a2a_agent: TestAgent
) -> None:
    approval = paused(*functions)
    answer = post(console, approval.id, {"approve": True})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["approval"]["decided_by"] == "console"
    assert len(decisions_sent(a2a_agent)) == 1


def test_questions_are_answered_and_a_wrong_answer_is_400_naming_answers(
    functions: tuple[Any, Any], console: Any, a2a_agent: TestAgent
) -> None:
    kubernetes, sweep = functions
    a2a_agent.hitl = {
        "type": "ask_user_request",
        "id": "ask-1",
        "questions": [{"question": "Which namespace?", "choices": ["shop", "cart"]}],
    }
    approval = paused(kubernetes, sweep)
    assert approval.kind == "ask_user"
    for wrong in (["payments"], ["shop", "cart"]):
        answer = post(console, approval.id, {"answers": wrong})
        assert (answer.status_code, answer.get_json()["field"]) == (400, "answers")
    assert post(console, approval.id, {"approve": True}).get_json()["field"] == "answers"
    assert decisions_sent(a2a_agent) == []

    answer = post(console, approval.id, {"answers": ["shop"]})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["approval"]["state"] == "answered"
    tick_until(sweep, lambda: any(f.outcome == "task:completed" for f in audit()))
    assert a2a_agent.decisions == [
        {"type": "ask_user_response", "id": "ask-1", "answers": [{"answer": ["shop"]}]}
    ]
