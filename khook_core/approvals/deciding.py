"""Deciding an approval: validated, stored once, then sent once to the paused task.

Order matters. The decision is checked against the request first (kagent fails a task on a
decision it cannot validate, for good); then stored by a write conditional on the version
read, so of two people deciding at once exactly one wins; only the winner sends it, on the
paused task's ``taskId`` and ``contextId`` with the extension asked for (``A2A-Extensions``).
A process that dies between storing and sending leaves the decision stored and unsent
(``sent`` empty): at most once, never twice; the task then ends at its own deadline.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from khook_core.approvals import hitl, records
from khook_core.approvals.hitl import DecisionError
from khook_core.errors import DispatchError, TransientError
from khook_core.settings import ApprovalSettings
from khook_core.state.base import ApprovalRecord

if TYPE_CHECKING:
    from khook_core.approvals.records import Services

logger = logging.getLogger(__name__)

SEND_BUDGET_S: Final = 30.0
DEADLINE_BY: Final = "khook (deadline)"
SEND_METHODS: Final = {"1.0": "SendMessage", "0.3": "message/send"}


@dataclasses.dataclass(frozen=True)
class Decision:
    """What a person decided: approve or reject every pending call (``approve``), or call by
    call (``calls``: id → approved), or the answers to an ``ask_user`` request."""

    by: str
    approve: bool | None = None
    calls: Mapping[str, bool] = dataclasses.field(default_factory=dict)
    reason: str = ""
    answers: Sequence[str] = ()


def build(approval: ApprovalRecord, decision: Decision) -> tuple[str, dict[str, Any], str]:
    """The approval's new state, the extension's response object and the message's text.

    Raises:
        DecisionError: the approval cannot take this decision (nothing is stored or sent).
    """
    if approval.kind == "plain":
        raise DecisionError(
            f"approval {approval.id} carries no HITL request khook can answer: "
            "answer the agent directly"
        )
    body = json.loads(approval.request)
    if approval.kind == "ask_user":
        if not decision.answers:
            raise DecisionError("this approval asks questions: give one --answer for each")
        response = hitl.ask_decision(body, decision.answers)
        return "answered", response, "; ".join(decision.answers)
    if decision.answers:
        raise DecisionError("this approval asks for tool approvals, not answers")
    calls = dict(decision.calls)
    if decision.approve is not None:
        calls = {str(t["id"]): decision.approve for t in hitl.pending_tools(body)} | calls
    reasons = {call: decision.reason for call, ok in calls.items() if not ok}
    response = hitl.tool_decision(body, calls, reasons)
    verdicts = {a["approved"] for a in response["approvals"]}
    state = "approved" if verdicts == {True} else "rejected" if verdicts == {False} else "mixed"
    text = {"approved": "Approved", "rejected": "Rejected"}.get(state, "Decided per call")
    return state, response, f"{text}: {decision.reason}" if decision.reason else text


def decide(
    runtime: Services, approval_id: str, decision: Decision, now: datetime
) -> ApprovalRecord:
    """Validate, store (once) and send ``decision``; the approval as stored at the end.

    Raises:
        DecisionError: unknown, already decided (by whom, when), or a decision that does not
            answer the request; nothing was sent.
        TransientError: the store could not be read or written.
    """
    store = runtime.approval_store()
    approval = store.get_approval(id=approval_id)
    if approval is None:
        raise DecisionError(f"no approval {approval_id!r} (see `khook approvals`)")
    if not approval.is_open:
        raise DecisionError(_already(approval))
    state, response, text = build(approval, decision)
    decided = dataclasses.replace(
        approval,
        state=state,
        decision=json.dumps(response, separators=(",", ":")),
        decided_by=decision.by,
        decided_at=now,
        reason=decision.reason,
    )
    if not store.update_approval(approval=decided, expect=approval.version):
        latest = store.get_approval(id=approval_id)
        raise DecisionError(_already(latest) if latest else f"approval {approval_id} is gone")
    decided = dataclasses.replace(decided, version=approval.version + 1)
    return _send_and_record(runtime, decided, response, text, now)


def _already(approval: ApprovalRecord) -> str:
    when = f" at {approval.decided_at:%Y-%m-%dT%H:%M:%SZ}" if approval.decided_at else ""
    by = f" by {approval.decided_by}" if approval.decided_by else ""
    return f"approval {approval.id} is already {approval.state}{by}{when}; nothing sent"


def _send_and_record(
    runtime: Services,
    decided: ApprovalRecord,
    response: dict[str, Any],
    text: str,
    now: datetime,
) -> ApprovalRecord:
    sent = send(runtime, decided, response, text)
    final = dataclasses.replace(decided, sent=sent)
    store = runtime.approval_store()
    if store.update_approval(approval=final, expect=decided.version):
        final = dataclasses.replace(final, version=decided.version + 1)
    task = runtime.task_store().read_task(ref=decided.task_ref)
    records.record(runtime, task, final, now)
    logger.info("approval %s %s by %s; decision %s", final.id, final.state, final.decided_by, sent)
    return final


def send(runtime: Services, approval: ApprovalRecord, response: dict[str, Any], text: str) -> str:
    """Send the decision to the paused task: ``sent`` or ``failed: <why>`` (never raises).

    Not retried once it may have arrived (``idempotent=False``): a decision is sent at most once.
    The sender (httpx) is imported here, so the console and the CLI load it only to send.
    """
    from khook_core.dispatch import jsonrpc
    from khook_core.dispatch.a2a import WIRE_1_0, A2ADispatcher
    from khook_core.dispatch.retry import Deadline

    wire = approval.wire or WIRE_1_0
    message = hitl.message(
        wire,
        message_id=f"khook-decision-{approval.id}",
        task_id=approval.task_id,
        context_id=approval.context_id,
        text=text,
        decision=response,
    )
    configuration = {"returnImmediately": True} if wire == WIRE_1_0 else {"blocking": False}
    a2a = A2ADispatcher(runtime.settings.dispatchers)
    try:
        answer = jsonrpc.call(
            a2a.sender,
            approval.endpoint,
            SEND_METHODS.get(wire, "SendMessage"),
            {"message": message, "configuration": configuration},
            what=f"agent {approval.endpoint} (decision of approval {approval.id})",
            headers={**a2a.headers(), "A2A-Version": wire, "A2A-Extensions": hitl.URI},
            deadline=Deadline(SEND_BUDGET_S),
            idempotent=False,
            request_id=f"khook-decision-{approval.id}",
        )
    except (TransientError, DispatchError) as exc:
        return f"failed: {exc}"
    finally:
        a2a.close()
    return "sent" if isinstance(answer, dict) else f"failed: {answer}"


def expire_due(runtime: Services, now: datetime) -> Counter[str]:
    """Reject the open approvals past their deadline (every sweep tick); a tally.

    A tool approval is rejected at the agent with that reason; a question (which has no
    rejection) or a plain pause is closed as ``expired`` and nothing is sent.
    """
    settings = runtime.settings.group(ApprovalSettings)
    store = runtime.approval_store()
    tally: Counter[str] = Counter()
    for approval in store.due_approvals(now=now, limit=settings.batch):
        waited = approval.deadline - approval.opened_at
        reason = f"not decided within its deadline ({_duration(waited.total_seconds())})"
        if approval.kind == "tool_approval":
            try:
                decide(
                    runtime,
                    approval.id,
                    Decision(by=DEADLINE_BY, approve=False, reason=reason),
                    now,
                )
                tally["rejected"] += 1
            except DecisionError:
                tally["raced"] += 1
            continue
        closed = dataclasses.replace(
            approval, state="expired", decided_by=DEADLINE_BY, decided_at=now, reason=reason
        )
        if store.update_approval(approval=closed, expect=approval.version):
            task = runtime.task_store().read_task(ref=approval.task_ref)
            records.record(runtime, task, closed, now)
            tally["expired"] += 1
        else:
            tally["raced"] += 1
    return tally


def _duration(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"
