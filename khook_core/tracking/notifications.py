"""Receiving A2A push notifications: the end of a task reported by its agent.

``functions/tasks`` hands each POST here. A notification names the agent's endpoint in the
URL's ``agent`` parameter (base64url, put there by the dispatcher) and the task in its body
(A2A 1.0 ``StreamResponse``: ``task``, ``statusUpdate`` or ``artifactUpdate``; or a bare task
as older 0.3 agents send). It is accepted only with the task's own token
(``X-A2A-Notification-Token``, compared with the hash stored at dispatch).

Duplicates and reordering are harmless: every change is a versioned write of the stored task
(``TaskStore.update_task``), a finished task is never changed again, and the end of a task is
recorded by the one writer that wrote it. Artifact text that arrives before the end is kept
with the task and becomes its finding.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hmac
import json
import logging
from typing import TYPE_CHECKING, Any, Final

from khook_core import escaping
from khook_core.state.base import TASK_STATES, TERMINAL_TASK_STATES
from khook_core.tracking import finding, tracker

if TYPE_CHECKING:
    from datetime import datetime

    from khook_core.runtime import Runtime
    from khook_core.state.base import TrackedTask

logger = logging.getLogger(__name__)

TOKEN_HEADER: Final = "X-A2A-Notification-Token"  # noqa: S105 - a header name
MAX_ROUNDS: Final = 5
"""Versioned writes tried for one notification before it is answered 503 (the sender may
retry; the deadline's last question catches what is lost)."""

Answer = tuple[int, dict[str, Any]]


def receive(runtime: Runtime, *, agent: str, token: str, body: bytes) -> Answer:
    """Apply one notification; the HTTP status and JSON body to answer."""
    try:
        endpoint = base64.urlsafe_b64decode(agent + "=" * (-len(agent) % 4)).decode()
        payload = json.loads(body)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return 400, _error("bad-request", "expected ?agent=<base64url> and a JSON body")
    update = _update_of(payload)
    if update is None:
        return 400, _error("bad-request", "the body is not an A2A task, status or artifact")
    task_id, state, found = update
    store = runtime.task_store()
    ref = f"{endpoint} {task_id}"
    for _ in range(MAX_ROUNDS):
        task = store.read_task(ref=ref)
        if task is None:
            return 404, _error("unknown-task", "this task is not tracked (yet)")
        if not task.push_token_hash or not hmac.compare_digest(
            tracker.token_hash(token), task.push_token_hash
        ):
            return 401, _error("unauthorized", f"a missing or wrong {TOKEN_HEADER}")
        if task.finished:
            return 200, {"status": "ignored", "detail": f"the task already ended {task.state}"}
        now = runtime.clock()
        if state in TERMINAL_TASK_STATES:
            if not found.text and task.finding:  # its artifacts came before the end
                found = finding.Finding(
                    task.finding, task.finding_chars, found.tokens or task.tokens
                )
            if tracker.finish(runtime, store, task, state, found, now) != "raced":
                return 200, {"status": "recorded", "state": state}
            continue
        _open_approval(runtime, task, state, payload, now)
        changed = dataclasses.replace(task, state=state or task.state)
        if found.text:
            text = f"{task.finding}\n{found.text}" if task.finding else found.text
            changed = dataclasses.replace(
                changed,
                finding=escaping.cut(text, finding.MAX_FINDING_CHARS),
                finding_chars=task.finding_chars + found.chars,
                tokens=found.tokens or task.tokens,
            )
        if changed == task:
            return 200, {"status": "unchanged", "state": task.state}
        if store.update_task(task=changed, expect=task.version):
            if changed.state != task.state and changed.state in tracker.RECORDED:
                tracker.record(runtime, changed, now)
            return 200, {"status": "updated", "state": changed.state}
    return 503, _error("contended", "the task changed under every try; send it again")


def _update_of(payload: Any) -> tuple[str, str, finding.Finding] | None:
    """Task id, state ("" when the notification has none) and text of a notification."""
    if not isinstance(payload, dict):
        return None
    none = finding.Finding("", 0, "")
    if isinstance(payload.get("task"), dict) or "status" in payload:
        task = payload["task"] if isinstance(payload.get("task"), dict) else payload
        status = task.get("status") if isinstance(task.get("status"), dict) else {}
        return str(task.get("id", "")), _state(status), finding.of_task(task)
    update = payload.get("statusUpdate")
    if isinstance(update, dict):
        status = update.get("status") if isinstance(update.get("status"), dict) else {}
        text = finding.of_task({"status": status, "metadata": update.get("metadata")})
        return str(update.get("taskId", "")), _state(status), text
    update = payload.get("artifactUpdate")
    if isinstance(update, dict):
        artifact = update.get("artifact")
        text = finding.of_task({"artifacts": [artifact]}) if isinstance(artifact, dict) else none
        return str(update.get("taskId", "")), "", text
    return None


def _open_approval(
    runtime: Runtime, task: TrackedTask, state: str, payload: dict[str, Any], now: datetime
) -> None:
    """A pause opens its approval (once, by its id: a redelivered notification adds none)."""
    if state == "input-required":
        from khook_core.approvals import records as approvals

        approvals.open_for(runtime, task, _status_message(payload), now)


def _status_message(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The status message of a task or status-update notification (a pause's request)."""
    holder = payload.get("task") or payload.get("statusUpdate") or payload
    status = holder.get("status") if isinstance(holder, dict) else None
    message = status.get("message") if isinstance(status, dict) else None
    return message if isinstance(message, dict) else None


def _state(status: Any) -> str:
    from khook_core.dispatch.a2a import normalise_state  # httpx: not at the function's import

    state = normalise_state(str(status.get("state", ""))) if isinstance(status, dict) else ""
    return state if state in TASK_STATES else ""


def _error(code: str, detail: str) -> dict[str, Any]:
    return {"error": code, "detail": detail}
