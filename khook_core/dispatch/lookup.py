"""Asking an A2A agent whether a message already reached it, before sending it again.

A send whose answer never came (a read timeout) may have started a run. Before its retry sends
the same message again, the dispatcher asks the agent: A2A 1.0 ``ListTasks`` filtered by the
message's ``contextId`` (khook's per-incident context), looking for a task whose history holds
the message's ``messageId``; a task listed without its history is read with ``GetTask``.

A2A 0.3 has no way to list tasks, and ``tasks/get`` needs the task id that the lost answer would
have carried, so a 0.3-only agent cannot be asked: the lookup says ``unknown``. The lookup is
always sent as 1.0 (``A2A-Version: 1.0``), so an agent that serves both wires on one endpoint
(the a2a-sdk with its 0.3 compatibility layer, kagent v0.9.7 to v0.10) answers it even when
messages go to it as 0.3.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from khook_core.dispatch import jsonrpc

if TYPE_CHECKING:
    from khook_core.dispatch.retry import Deadline, Sender

PAGE_SIZE: Final = 100
"""Tasks asked for a page (the most A2A 1.0 servers, kagent included, hand out at once)."""
MAX_PAGES: Final = 5
"""Pages read before giving up as ``unknown``: one incident's context rarely holds 500 tasks,
and every page is spent from the dispatch's time budget."""
MAX_TASK_READS: Final = 20
"""``GetTask`` calls for tasks listed without their history, at most; beyond: ``unknown``."""

Verdict = Literal["found", "none", "unknown"]


@dataclass(frozen=True)
class Lookup:
    """What the agent said: ``found`` (``task`` is its task for the message), ``none`` (it
    listed the context and has no task for it) or ``unknown`` (it could not say: ``reason``)."""

    verdict: Verdict
    task: dict[str, Any] | None = None
    reason: str = ""


def find_message(
    sender: Sender,
    url: str,
    *,
    what: str,
    headers: Mapping[str, str],
    deadline: Deadline,
    context_id: str,
    message_id: str,
) -> Lookup:
    """Look for the task ``message_id`` started in ``context_id`` at the agent at ``url``.

    Raises:
        TransientError: the agent could not be reached (or kept answering 5xx/429).
    """
    v1 = {**headers, "A2A-Version": "1.0"}
    unread: list[str] = []
    page_token = ""
    for _ in range(MAX_PAGES):
        params: dict[str, Any] = {"contextId": context_id, "pageSize": PAGE_SIZE}
        if page_token:
            params["pageToken"] = page_token
        answer = jsonrpc.call(
            sender, url, "ListTasks", params, what=what, headers=v1, deadline=deadline
        )
        if isinstance(answer, str):
            return Lookup("unknown", reason=f"ListTasks: {answer}")
        tasks = answer.get("tasks")
        if not isinstance(tasks, list):
            return Lookup("unknown", reason="ListTasks answered without a task list")
        for task in tasks:
            if not isinstance(task, dict):
                continue
            if "history" not in task:
                unread.append(str(task.get("id", "")))
            elif carries(task, message_id):
                return Lookup("found", task)
        page_token = str(answer.get("nextPageToken") or "")
        if not page_token:
            break
    else:
        return Lookup("unknown", reason=f"more than {MAX_PAGES * PAGE_SIZE} tasks in the context")
    if len(unread) > MAX_TASK_READS:
        return Lookup("unknown", reason=f"{len(unread)} tasks listed without their history")
    for task_id in unread:
        answer = jsonrpc.call(
            sender, url, "GetTask", {"id": task_id}, what=what, headers=v1, deadline=deadline
        )
        if isinstance(answer, str):
            return Lookup("unknown", reason=f"GetTask {task_id}: {answer}")
        if carries(answer, message_id):
            return Lookup("found", answer)
    return Lookup("none")


def carries(task: Mapping[str, Any], message_id: str) -> bool:
    """Whether ``message_id`` is among the messages of ``task``'s history."""
    history = task.get("history")
    return isinstance(history, list) and any(
        isinstance(message, dict) and message.get("messageId") == message_id for message in history
    )
