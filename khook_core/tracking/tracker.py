"""Tracking: store a task at its dispatch, ask about the due ones on every sweep tick.

Each task moves through the store by versioned writes only (``TaskStore.update_task``), so
whatever races for it (two ticks, a tick and a redelivered dispatch) writes one transition
once, and only the writer that won records it in the audit trail. A tick that dies leaves its
tasks leased until the lease lapses; they are then due again, and a task past its deadline is
timed out on the first tick that sees it, whatever happened before.

The audit record of a transition is written after the store accepted it: a crash between the
two loses that record (never writes it twice); the task itself keeps its end in the store.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import secrets
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from khook_core.errors import TransientError
from khook_core.settings import TrackingSettings
from khook_core.state.base import NEVER, AuditLog, Firing, TaskStore, TrackedTask

if TYPE_CHECKING:
    from khook_core.dispatch.base import DispatchRequest, DispatchResult
    from khook_core.event import Event
    from khook_core.hooks import HookRule
    from khook_core.runtime import Runtime
    from khook_core.tracking.agent_calls import TaskClient, TaskView
    from khook_core.tracking.finding import Finding

logger = logging.getLogger(__name__)

FINDING_LINE_CHARS: Final = 200
"""A finding's first line in the log (the audit record has it whole)."""
MIN_CHECK_S: Final = 0.5
"""Below this much time left in the tick, no further agent is asked (it could not answer)."""
RECORDED: Final = frozenset({"input-required", "auth-required"})
"""Open states worth an audit record of their own: a person has to act."""


def push_fields(runtime: Runtime) -> tuple[str, str]:
    """What a dispatch request carries for push notifications: our receiver's URL and a new
    token of its own (both empty when no receiver is configured)."""
    settings = runtime.tracking
    if not (settings.enabled and settings.push_url):
        return "", ""
    return settings.push_url, secrets.token_urlsafe(24)


def token_hash(token: str) -> str:
    """What the store keeps of a task's push token: never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


def start(
    runtime: Runtime, request: DispatchRequest, result: DispatchResult, rule: HookRule
) -> TrackedTask | None:
    """Track the task a dispatch started (nothing for a webhook, a plain message or no task).

    A store that fails here leaves the task untracked: logged, never raised (the run started).
    """
    if not (result.task_id and result.endpoint):  # first: a dry run must cost nothing here
        return None
    settings = runtime.tracking
    if not settings.enabled:
        return None
    now = runtime.clock()
    asked = rule.task  # the hook's own deadline and cancel, over the settings'
    deadline = now + (
        asked.deadline
        if asked is not None and asked.deadline is not None
        else timedelta(seconds=settings.deadline)
    )
    cancel = asked.cancel if asked is not None and asked.cancel is not None else settings.cancel
    event = request.event
    task = TrackedTask(
        task_id=result.task_id,
        endpoint=result.endpoint,
        wire=result.wire,
        context_id=request.context_id,
        key=request.key,
        hook=request.hook,
        event_id=event.id,
        event_type=event.type,
        source=event.source,
        resource=event.resource.ref(),
        agent=rule.target.label(),
        state=result.state if result.state in _OPEN_OR_DONE else "submitted",
        created_at=now,
        deadline=deadline,
        # A task reported by push is asked about only at its deadline (then timed out).
        next_check=deadline if result.push else now + timedelta(seconds=settings.first_check),
        cancel=cancel,
        push_token_hash=token_hash(request.push_token) if result.push else "",
        reply_to=reply_target(event),
        approval_deadline_s=int(asked.approval_deadline.total_seconds())
        if asked is not None and asked.approval_deadline is not None
        else 0,
    )
    try:
        runtime.task_store().track_task(task=task)
    except TransientError as exc:
        logger.error(
            "task %s of %s is not tracked (task store unavailable): %s",
            task.task_id,
            request.key,
            exc,
        )
        return None
    return task


def reply_target(event: Event) -> str:
    """Where the task's finding is reported back (a pull request, a commit, a PagerDuty
    incident), or "".

    Only the webhook source's events have one, so the reporting package (and the webhook
    presets it reads PagerDuty's event type from) is imported for those alone: the other
    functions never load it.
    """
    if event.source != "webhook":
        return ""
    from khook_core.reporting import github, pagerduty

    return github.reply_target(event.source, event.tags, event.metadata) or pagerduty.reply_target(
        event.source, event.type, event.occurrence
    )


_OPEN_OR_DONE: Final = frozenset({"submitted", "working", "input-required", "auth-required"})


def tick(runtime: Runtime, *, deadline: float | None = None) -> Counter[str]:
    """Ask the agents about the tasks that are due; return a tally of what happened to them.

    Raises:
        TransientError: the due tasks could not be listed (the next tick tries again).
    """
    settings = runtime.settings.group(TrackingSettings)
    tally: Counter[str] = Counter()
    if not settings.enabled:
        return tally
    store = runtime.task_store()
    now = runtime.clock()
    lease = timedelta(seconds=runtime.settings.invocation_budget)
    due = store.due_tasks(now=now, limit=settings.batch, lease=lease)
    if not due:
        return tally
    # Imported here: httpx stays out of the dispatch path of a function that never sends.
    from khook_core.tracking.agent_calls import TaskClient

    client = TaskClient(runtime.settings.dispatchers)
    try:
        for done, task in enumerate(due):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left < MIN_CHECK_S:
                logger.warning(
                    "tracking: the tick's time is spent; %d task(s) wait for their lease to lapse",
                    len(due) - done,
                )
                break
            try:
                tally[advance(runtime, store, client, task, settings, budget=left)] += 1
            except TransientError as exc:
                logger.warning("tracking %s: task store unavailable: %s", task.ref, exc)
                tally["store-unavailable"] += 1
    finally:
        client.close()
    return tally


def advance(
    runtime: Runtime,
    store: TaskStore,
    client: TaskClient,
    task: TrackedTask,
    settings: TrackingSettings,
    *,
    budget: float | None = None,
) -> str:
    """Ask about one leased task and write what changed; the word for the tick's tally."""
    now = runtime.clock()
    budget = 30.0 if budget is None else budget
    try:
        view: TaskView | None = client.get(
            endpoint=task.endpoint, wire=task.wire, task_id=task.task_id, budget=budget
        )
    except TransientError as exc:  # the agent is down: ask again later, or time out
        logger.debug("tracking %s: agent unreachable: %s", task.ref, exc)
        view = None
    if view is not None and view.state in _TERMINAL_VIEW:
        return finish(runtime, store, task, view.state, view.found, now)
    if now >= task.deadline:
        if task.cancel:
            _cancel(client, task, budget)
        from khook_core.tracking.finding import Finding  # the first timed-out task loads it

        return finish(runtime, store, task, "timed-out", Finding("", 0, ""), now)
    state = task.state if view is None else view.state
    delay = min(settings.max_backoff, settings.backoff * 2.0 ** min(task.checks, 30))
    later = dataclasses.replace(
        task,
        state=state,
        checks=task.checks + 1,
        next_check=min(now + timedelta(seconds=delay), task.deadline),
    )
    if not store.update_task(task=later, expect=task.version):
        return "raced"
    if state != task.state and state in RECORDED:
        record(runtime, later, now)
    if view is not None and view.state == "input-required":  # once per pause (by its id)
        from khook_core.approvals import records as approvals

        approvals.open_for(runtime, later, view.message, now)
    return "unreachable" if view is None else "open"


_TERMINAL_VIEW: Final = frozenset({"completed", "failed", "rejected", "canceled"})


def finish(
    runtime: Runtime,
    store: TaskStore,
    task: TrackedTask,
    state: str,
    found: Finding,
    now: datetime,
) -> str:
    """Write the end of ``task`` (read at its version) and record it once; "raced" when
    another writer moved the task first (its transition, its record)."""
    ended = dataclasses.replace(
        task,
        state=state,
        checks=task.checks + 1,
        next_check=NEVER,
        finding=found.text,
        finding_chars=found.chars,
        tokens=found.tokens,
        finished_at=now,
    )
    if not store.update_task(task=ended, expect=task.version):
        return "raced"
    # Imported here: httpx stays out of the dispatch path of a function that never sends.
    from khook_core.reporting.delivery import deliver

    record(runtime, ended, now, deliver(runtime, ended))
    first = (found.text.splitlines() or [""])[0][:FINDING_LINE_CHARS]
    logger.info(
        "finding %s (%s, task %s)%s", task.hook, state, task.task_id, f": {first}" if first else ""
    )
    return state


def _cancel(client: TaskClient, task: TrackedTask, budget: float) -> None:
    try:
        refused = client.cancel(
            endpoint=task.endpoint, wire=task.wire, task_id=task.task_id, budget=budget
        )
    except TransientError as exc:
        refused = str(exc)
    if refused:
        logger.warning("tracking %s: cancel after the deadline refused: %s", task.ref, refused)


def record(
    audit_runtime: Runtime, task: TrackedTask, now: datetime, extra: dict[str, str] | None = None
) -> None:
    """The audit record of one transition (outcome ``task:<state>``), with the delivery status
    of each report destination in ``extra``; a failure is logged."""
    audit: AuditLog = audit_runtime.store
    try:
        audit.record(
            Firing(
                key=task.key,
                hook=task.hook,
                event_id=task.event_id,
                event_type=task.event_type,
                source=task.source,
                resource=task.resource,
                agent=task.agent,
                prompt_hash="",
                outcome=f"task:{task.state}",
                at=now,
                task_id=task.task_id,
                extra=dict(extra or {}),
                config_version=audit_runtime.config.version,
                task_state=task.state,
                finding=task.finding,
                finding_chars=str(task.finding_chars) if task.finding_chars else "",
                finished_at=task.finished_at.isoformat() if task.finished_at else "",
                tokens=task.tokens,
            )
        )
    except TransientError as exc:
        logger.error("could not record the end of task %s: %s", task.ref, exc)
