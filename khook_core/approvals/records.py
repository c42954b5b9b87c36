"""Opening an approval when a tracked task pauses, and its audit records."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Protocol

from khook_core.approvals import hitl
from khook_core.errors import TransientError
from khook_core.settings import ApprovalSettings
from khook_core.state.base import ApprovalRecord, DedupKey, Firing, TrackedTask

if TYPE_CHECKING:
    from khook_core.runtime import Runtime
    from khook_core.settings import Settings
    from khook_core.state.base import ApprovalStore, AuditLog, TaskStore


class Versioned(Protocol):
    @property
    def version(self) -> str: ...


class Services(Protocol):
    """What deciding an approval needs of a ``Runtime`` (the CLI builds these alone, without
    loading a configuration directory)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> AuditLog: ...

    @property
    def config(self) -> Versioned: ...

    def approval_store(self) -> ApprovalStore: ...

    def task_store(self) -> TaskStore: ...


logger = logging.getLogger(__name__)

TEXT_MAX_CHARS: Final = 2000
"""What the agent said when it paused, as stored and shown (its request is kept whole)."""


def approval_id(task: TrackedTask, message: dict[str, Any] | None) -> str:
    """One id per pause: the task and the status message that paused it (a task that pauses
    twice opens two approvals; a pause seen on many ticks opens one)."""
    message_id = str((message or {}).get("messageId") or "")
    return hashlib.sha256(f"{task.ref}\n{message_id}".encode()).hexdigest()[:12]


def text_of(message: dict[str, Any] | None) -> str:
    parts = (message or {}).get("parts")
    texts = [str(p.get("text")) for p in parts or [] if isinstance(p, dict) and p.get("text")]
    return "\n".join(texts)[:TEXT_MAX_CHARS]


def open_for(
    runtime: Runtime, task: TrackedTask, message: dict[str, Any] | None, now: datetime
) -> ApprovalRecord | None:
    """Store the approval of ``task``'s pause (once), record and announce it when new; None
    when the store failed (logged: the next tick that sees the pause tries again)."""
    request = hitl.request_of(message)
    settings = runtime.settings.group(ApprovalSettings)
    wait = task.approval_deadline_s or settings.deadline
    approval = ApprovalRecord(
        id=approval_id(task, message),
        task_ref=task.ref,
        task_id=task.task_id,
        context_id=task.context_id,
        endpoint=task.endpoint,
        wire=task.wire,
        hook=task.hook,
        key=str(task.key),
        agent=task.agent,
        kind=request.kind if request is not None else "plain",
        request=json.dumps(request.body, separators=(",", ":")) if request is not None else "",
        text=text_of(message),
        opened_at=now,
        deadline=now + timedelta(seconds=wait),
    )
    try:
        stored, created = runtime.approval_store().open_approval(approval=approval)
    except TransientError as exc:
        logger.error("approval of task %s not opened (store unavailable): %s", task.ref, exc)
        return None
    if created:
        logger.info(
            "approval %s opened (%s, task %s of %s)%s",
            stored.id,
            stored.kind,
            task.task_id,
            task.hook,
            "" if request is not None else ": no HITL request, answer the agent directly",
        )
        record(runtime, task, stored, now)
        from khook_core.approvals.announce import announce  # httpx only when one opens

        announce(runtime, task, stored)
    return stored


def record(
    runtime: Services, task: TrackedTask | None, approval: ApprovalRecord, now: datetime
) -> None:
    """The audit record of an approval's change (outcome ``approval:<state>``, its id, who
    decided and what was sent in ``extra``); a failure is logged."""
    extra = {"approval": approval.id, "approval_kind": approval.kind}
    if approval.decided_by:
        extra["decided_by"] = approval.decided_by
    if approval.reason:
        extra["reason"] = approval.reason
    if approval.sent:
        extra["decision_sent"] = approval.sent
    try:
        runtime.store.record(
            Firing(
                key=task.key if task is not None else DedupKey(approval.key),
                hook=approval.hook,
                event_id=task.event_id if task is not None else "",
                event_type=task.event_type if task is not None else "",
                source=task.source if task is not None else "",
                resource=task.resource if task is not None else "",
                agent=approval.agent,
                prompt_hash="",
                outcome=f"approval:{approval.state}",
                at=now,
                task_id=approval.task_id,
                extra=extra,
                config_version=runtime.config.version,
                task_state=task.state if task is not None else "input-required",
            )
        )
    except TransientError as exc:
        logger.error("could not record approval %s: %s", approval.id, exc)


def as_json(approval: ApprovalRecord) -> dict[str, Any]:
    """The approval as ``khook approvals --json`` and the console's API show it: times in
    RFC 3339 (``decided_at`` null while open), the request and the decision as objects."""
    from khook_core.timeparse import format_time

    return {
        "id": approval.id,
        "state": approval.state,
        "kind": approval.kind,
        "hook": approval.hook,
        "agent": approval.agent,
        "task_id": approval.task_id,
        "context_id": approval.context_id,
        "endpoint": approval.endpoint,
        "text": approval.text,
        "request": json.loads(approval.request) if approval.request else None,
        "opened_at": format_time(approval.opened_at),
        "deadline": format_time(approval.deadline),
        "decision": json.loads(approval.decision) if approval.decision else None,
        "decided_by": approval.decided_by,
        "decided_at": format_time(approval.decided_at) if approval.decided_at else None,
        "reason": approval.reason,
        "sent": approval.sent,
    }
