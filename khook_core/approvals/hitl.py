"""kagent's human-in-the-loop A2A extension (``https://kagent.dev/extensions/hitl/v1``).

A paused task's status message carries the request under ``metadata[URI]`` (and the URI in its
``extensions``): ``tool_approval_request`` (tools to approve, each by its opaque ``id``) or
``ask_user_request`` (questions). The answer goes back as a message on the same task and
context with ``tool_approval_response`` / ``ask_user_response``. kagent fails the task on a
decision it cannot validate, and it cannot be retried: so every rule it checks is checked here
first (every tool answered exactly once, one answer per question, a choice among the choices).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from khook_core.dispatch.base import HITL_URI as URI
from khook_core.errors import KhookError

__all__ = ["URI", "DecisionError", "Request", "request_of"]
TOOL_REQUEST: Final = "tool_approval_request"
ASK_REQUEST: Final = "ask_user_request"
KINDS: Final = {TOOL_REQUEST: "tool_approval", ASK_REQUEST: "ask_user"}


class DecisionError(KhookError):
    """A decision that does not answer the request: refused before anything is sent."""


@dataclass(frozen=True)
class Request:
    """A HITL request as the agent sent it: ``kind`` (``tool_approval`` / ``ask_user``) and the
    metadata object itself."""

    kind: str
    body: dict[str, Any]


def request_of(message: Mapping[str, Any] | None) -> Request | None:
    """The HITL request a status message carries, or None (a plain ``input-required``).

    Valid only as kagent reads it: the URI listed in ``extensions`` and an object of a known
    ``type`` under ``metadata[URI]``.
    """
    if not isinstance(message, Mapping):
        return None
    extensions = message.get("extensions")
    metadata = message.get("metadata")
    if not isinstance(extensions, list) or URI not in extensions:
        return None
    if not isinstance(metadata, Mapping):
        return None
    body = metadata.get(URI)
    if not isinstance(body, Mapping) or body.get("type") not in KINDS:
        return None
    return Request(KINDS[str(body["type"])], dict(body))


def pending_tools(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The tool calls to answer: a paused sub-agent's (``nested.tools``) when there is one."""
    nested = body.get("nested")
    tools = nested.get("tools") if isinstance(nested, Mapping) else body.get("tools")
    if not isinstance(tools, list):
        return []
    return [dict(t) for t in tools if isinstance(t, Mapping) and t.get("id")]


def questions(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    found = body.get("questions")
    return [q for q in found if isinstance(q, dict)] if isinstance(found, list) else []


def tool_decision(
    body: Mapping[str, Any], calls: Mapping[str, bool], reasons: Mapping[str, str]
) -> dict[str, Any]:
    """``tool_approval_response`` answering every pending call (``calls``: id → approved).

    Raises:
        DecisionError: a pending call left unanswered, or an id that is not pending.
    """
    pending = [str(t["id"]) for t in pending_tools(body)]
    if not pending:
        raise DecisionError("the request lists no tool call to answer")
    unknown = sorted(set(calls) - set(pending))
    if unknown:
        raise DecisionError(f"not pending in this approval: {', '.join(unknown)}")
    missing = [i for i in pending if i not in calls]
    if missing:
        raise DecisionError(
            f"every pending call must be answered; unanswered: {', '.join(missing)}"
        )
    approvals: list[dict[str, Any]] = []
    for call in pending:
        answer: dict[str, Any] = {"id": call, "approved": calls[call]}
        if not calls[call] and reasons.get(call):
            answer["rejection_reason"] = reasons[call]
        approvals.append(answer)
    return {"type": "tool_approval_response", "approvals": approvals}


def ask_decision(body: Mapping[str, Any], answers: Sequence[str]) -> dict[str, Any]:
    """``ask_user_response`` with one answer per question, in order (a ``multiple`` question
    takes a comma-separated list; a question with choices takes only those).

    Raises:
        DecisionError: a count that does not match, or an answer outside the choices.
    """
    asked = questions(body)
    if not asked:
        raise DecisionError("the request lists no question to answer")
    if len(answers) != len(asked):
        raise DecisionError(
            f"{len(asked)} question(s) asked, {len(answers)} answer(s) given (one --answer each)"
        )
    out: list[dict[str, list[str]]] = []
    for question, answer in zip(asked, answers, strict=True):
        picked = [a.strip() for a in answer.split(",")] if question.get("multiple") else [answer]
        picked = [p for p in picked if p]
        if not picked:
            raise DecisionError(f"empty answer to {question.get('question', '')!r}")
        choices = question.get("choices") or []
        outside = [p for p in picked if choices and p not in choices]
        if outside:
            raise DecisionError(
                f"{', '.join(outside)} is not a choice of {question.get('question', '')!r} "
                f"({', '.join(map(str, choices))})"
            )
        out.append({"answer": picked})
    return {"type": "ask_user_response", "id": str(body.get("id", "")), "answers": out}


def message(
    wire: str, *, message_id: str, task_id: str, context_id: str, text: str, decision: Any
) -> dict[str, Any]:
    """The decision as an A2A message on ``wire`` (1.0 or 0.3), on the paused task's ids."""
    common = {
        "messageId": message_id,
        "taskId": task_id,
        "contextId": context_id,
        "extensions": [URI],
        "metadata": {URI: decision},
    }
    if wire == "0.3":
        return {
            "kind": "message",
            "role": "user",
            "parts": [{"kind": "text", "text": text}],
            **common,
        }
    return {"role": "ROLE_USER", "parts": [{"text": text}], **common}
