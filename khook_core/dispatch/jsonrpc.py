"""One JSON-RPC call to an A2A agent, answered by its result object or a refusal.

The dispatcher's duplicate lookup (``ListTasks`` / ``GetTask``), the task tracker
(``GetTask`` / ``CancelTask`` and their 0.3 names) and an approval's decision (``SendMessage``)
ask agents the same way: one request through the shared sender, whose answer is either the
``result`` object or a line saying why not. Reads and cancels may be retried; a decision is not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from khook_core.dispatch.retry import error_text

if TYPE_CHECKING:
    from khook_core.dispatch.retry import Deadline, Sender

TASK_NOT_FOUND: Final = -32001
"""A2A's error code for a task the agent does not (or no longer) know."""


def call(
    sender: Sender,
    url: str,
    method: str,
    params: dict[str, Any],
    *,
    what: str,
    headers: Mapping[str, str],
    deadline: Deadline,
    idempotent: bool = True,
    request_id: str = "",
) -> dict[str, Any] | str:
    """The JSON-RPC result object of ``method``, or why there is none (a refusal line).

    ``idempotent`` (a read or a cancel: asking twice changes nothing more) lets the sender
    retry once the request may have arrived; a send that must arrive at most once passes
    False. ``request_id`` is the JSON-RPC id (``khook-<method>`` when empty).

    Raises:
        TransientError: the agent could not be reached, or kept failing (the sender's retries
            spent).
        DispatchError: the request could not be sent at all (see the sender).
    """
    body = {
        "jsonrpc": "2.0",
        "id": request_id or f"khook-{method}",
        "method": method,
        "params": params,
    }
    response = sender.send(
        "POST",
        url,
        what=what,
        deadline=deadline,
        idempotent=idempotent,
        headers=headers,
        content=json.dumps(body, separators=(",", ":")).encode(),
    )
    if not 200 <= response.status_code < 300:
        return f"HTTP {response.status_code}: {error_text(response)}"
    try:
        payload = response.json()
    except ValueError:
        return f"answer is not JSON: {error_text(response)}"
    if not isinstance(payload, dict):
        return f"answer is not a JSON-RPC object: {error_text(response)}"
    error = payload.get("error")
    if error is not None:
        code = error.get("code") if isinstance(error, dict) else None
        text = error.get("message", "") if isinstance(error, dict) else str(error)
        prefix = "task not found" if code == TASK_NOT_FOUND else f"JSON-RPC error {code}"
        return f"{prefix}: {text}"
    result = payload.get("result")
    if not isinstance(result, dict):
        return "answer has no result object"
    return result
