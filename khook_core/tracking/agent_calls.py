"""Asking an A2A agent about a task it holds: ``GetTask`` / ``CancelTask`` (A2A 1.0) and
``tasks/get`` / ``tasks/cancel`` (0.3), on the wire the dispatch used.

Reads are idempotent, so the shared sender retries them (connection errors, 429, 5xx, read
timeouts) within a small budget; what still fails is a ``TransientError`` and the task is asked
about again on a later tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from khook_core.dispatch import jsonrpc
from khook_core.dispatch.a2a import WIRE_1_0, A2ADispatcher, normalise_state
from khook_core.dispatch.base import HITL_URI
from khook_core.dispatch.retry import Deadline
from khook_core.settings import DispatchSettings
from khook_core.state.base import TASK_STATES
from khook_core.tracking import finding

if TYPE_CHECKING:
    import httpx

METHODS: Final = {
    ("get", "1.0"): "GetTask",
    ("get", "0.3"): "tasks/get",
    ("cancel", "1.0"): "CancelTask",
    ("cancel", "0.3"): "tasks/cancel",
}
CALL_BUDGET_S: Final = 10.0
"""One question about one task, its retries included: a tick asks about many."""


@dataclass(frozen=True)
class TaskView:
    """What the agent said about a task: its state and, once it ended, its finding.

    ``state`` is ``unknown`` when the agent no longer knows the task (task not found) or
    answered something that is not a task; ``detail`` then says what it answered.
    """

    state: str
    found: finding.Finding
    detail: str = ""
    message: dict[str, Any] | None = None
    """The status message (an ``input-required`` one may carry a request to answer)."""


class TaskClient:
    """Questions about tasks, with the dispatcher's identity headers and retrying sender."""

    def __init__(self, settings: DispatchSettings, *, client: httpx.Client | None = None) -> None:
        self._a2a = A2ADispatcher(settings, client=client)

    def get(self, *, endpoint: str, wire: str, task_id: str, budget: float) -> TaskView:
        """The task as the agent sees it.

        Raises:
            TransientError: the agent could not be reached, or kept failing.
        """
        answer = self._call("get", endpoint, wire, task_id, budget)
        if isinstance(answer, str):
            return TaskView("unknown", finding.Finding("", 0, ""), answer)
        inner = answer.get("task")
        task: dict[str, Any] = inner if isinstance(inner, dict) else answer
        status = task.get("status")
        state = normalise_state(str(status.get("state", ""))) if isinstance(status, dict) else ""
        if state not in TASK_STATES:
            return TaskView("unknown", finding.Finding("", 0, ""), f"state {state!r}")
        message = status.get("message") if isinstance(status, dict) else None
        return TaskView(
            state, finding.of_task(task), message=message if isinstance(message, dict) else None
        )

    def cancel(self, *, endpoint: str, wire: str, task_id: str, budget: float) -> str:
        """Ask the agent to cancel the task; "" when it did, else what it answered.

        Raises:
            TransientError: the agent could not be reached, or kept failing.
        """
        answer = self._call("cancel", endpoint, wire, task_id, budget)
        return answer if isinstance(answer, str) else ""

    def _call(
        self, what: str, endpoint: str, wire: str, task_id: str, budget: float
    ) -> dict[str, Any] | str:
        wire = wire or WIRE_1_0
        method = METHODS[(what, wire)]
        return jsonrpc.call(
            self._a2a.sender,
            endpoint,
            method,
            {"id": task_id},
            what=f"agent {endpoint} ({method} {task_id})",
            headers={**self._a2a.headers(), "A2A-Version": wire, "A2A-Extensions": HITL_URI},
            deadline=Deadline(min(budget, CALL_BUDGET_S)),
        )

    def close(self) -> None:
        self._a2a.close()
