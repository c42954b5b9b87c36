"""Announcing a new approval in the hook's chat destinations (its ``report:`` Slack and Google
Chat entries), with the pending tool calls and the command that decides it.

The agent's words and the tool arguments are model output: they go through the same escaping
as a finding (``reporting.formats``). Never raises: an announcement that fails is logged, the
approval stays listed by ``khook approvals``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import TYPE_CHECKING, Final

from khook_core.approvals import hitl
from khook_core.dispatch.retry import Deadline, RetryPolicy, Sender, error_text, new_client
from khook_core.errors import DispatchError, TransientError
from khook_core.reporting import formats
from khook_core.reporting.delivery import destinations_of
from khook_core.state.base import ApprovalRecord, TrackedTask

if TYPE_CHECKING:
    from khook_core.runtime import Runtime

logger = logging.getLogger(__name__)

ANNOUNCE_BUDGET_S: Final = 10.0
ARGS_CHARS: Final = 300


def summary(approval: ApprovalRecord) -> str:
    """What a person needs to decide: the agent's words, each pending call, the command."""
    lines = [f"Approval {approval.id} waits for a decision (until {approval.deadline:%H:%M} UTC)."]
    if approval.text:
        lines.append(approval.text)
    body = json.loads(approval.request) if approval.request else {}
    for tool in hitl.pending_tools(body):
        args = json.dumps(tool.get("args", {}), ensure_ascii=False, sort_keys=True)[:ARGS_CHARS]
        lines.append(f"- {tool.get('name', '?')} {args} (call {tool['id']})")
    for question in hitl.questions(body):
        choices = question.get("choices") or []
        lines.append(f"- {question.get('question', '')}" + (f" {choices}" if choices else ""))
    if approval.kind == "plain":
        lines.append("No request khook can answer: answer the agent directly.")
    else:
        lines.append(f"Decide: khook approve {approval.id} [--reject --reason TEXT]")
    return "\n".join(lines)


def announce(runtime: Runtime, task: TrackedTask, approval: ApprovalRecord) -> dict[str, str]:
    """Post the approval to each chat destination of the task's hook; ``kind`` → status."""
    chats = [d for d in destinations_of(runtime, task) if d.slack or d.google_chat]
    if not chats:
        return {}
    shown = dataclasses.replace(task, state="input-required", finding=summary(approval))
    statuses: dict[str, str] = {}
    settings = runtime.settings
    client = new_client(settings.dispatchers.connect_timeout)
    sender = Sender(client, RetryPolicy.from_settings(settings.dispatchers, read_timeout=10.0))
    try:
        for n, destination in enumerate(chats):
            chat = destination.slack or destination.google_chat
            assert chat is not None
            url = str(settings.environ.get(chat.url_env, ""))
            status = "skipped: unset"
            if url:
                body = (formats.slack if destination.slack else formats.google_chat)(shown, "")
                try:
                    response = sender.send(
                        "POST",
                        url,
                        what=f"approval announcement {destination.kind}",
                        deadline=Deadline(ANNOUNCE_BUDGET_S),
                        headers={"Content-Type": "application/json"},
                        content=json.dumps(body, ensure_ascii=False).encode(),
                        idempotent=True,
                    )
                    ok = 200 <= response.status_code < 300
                    status = (
                        "sent"
                        if ok
                        else f"failed: HTTP {response.status_code}: " + (error_text(response))
                    )
                except (TransientError, DispatchError) as exc:
                    status = f"failed: {exc}"
            statuses[f"announce.{n}.{destination.kind}"] = status
            if status != "sent":
                logger.warning(
                    "approval %s announcement %s: %s", approval.id, destination.kind, status
                )
    finally:
        client.close()
    return statuses
