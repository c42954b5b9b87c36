"""Delivering a finding to each destination of its hook, one status each.

Statuses: ``sent``; ``skipped: <why>`` (the destination's URL variable is unset); ``failed:
<why>`` (refused, or still failing after the sender's retries within ``REPORT_BUDGET_S``);
``skipped`` too for ``github`` when the task's event was not GitHub's, and for ``pagerduty``
when it was not PagerDuty's;
``pending: object, hook`` for a ``kubernetes`` destination, which the in-cluster forwarder
writes (``forwarder.finding_events``).
Never raises: a destination that fails does not stop the next one, nor the task's record.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import TYPE_CHECKING, Any, Final

from khook_core.dispatch.retry import Deadline, RetryPolicy, Sender, error_text, new_client
from khook_core.errors import DispatchError, TransientError
from khook_core.reportconfig import KUBERNETES_PENDING, ReportDestination
from khook_core.reporting import formats, github, pagerduty
from khook_core.state.base import TrackedTask

if TYPE_CHECKING:
    from khook_core.runtime import Runtime

logger = logging.getLogger(__name__)

REPORT_BUDGET_S: Final = 10.0
"""One destination's delivery, retries included: a tick reports many tasks."""
REASON_CHARS: Final = 200
GITHUB_API_VERSION: Final = "2022-11-28"
PAGERDUTY_ACCEPT: Final = "application/vnd.pagerduty+json;version=2"


def deliver(runtime: Runtime, task: TrackedTask) -> dict[str, str]:
    """Send ``task``'s finding to every destination of its hook; ``report.<n>.<kind>`` →
    status (empty when the hook reports nowhere, or is gone)."""
    destinations = destinations_of(runtime, task)
    if not destinations:
        return {}
    settings = runtime.settings
    task_url = task_link(settings.console.task_url, task)
    statuses: dict[str, str] = {}
    client = new_client(settings.dispatchers.connect_timeout)
    sender = Sender(client, RetryPolicy.from_settings(settings.dispatchers, read_timeout=10.0))
    try:
        for n, destination in enumerate(destinations):
            status = _deliver_one(sender, destination, task, task_url, settings.environ)
            statuses[f"report.{n}.{destination.kind}"] = status
            if status != "sent" and not status.startswith(KUBERNETES_PENDING):
                logger.warning(
                    "report %s of task %s (%s): %s",
                    destination.kind,
                    task.task_id,
                    task.hook,
                    status,
                )
    finally:
        client.close()
    return statuses


def destinations_of(runtime: Runtime, task: TrackedTask) -> tuple[ReportDestination, ...]:
    """The ``report:`` list of the configuration that started the task (hook and type)."""
    for rule in runtime.config.hooks.rules:
        if rule.hook == task.hook and rule.event_type == task.event_type:
            return rule.report
    return ()


def task_link(template: str, task: TrackedTask) -> str:
    """``KHOOK_CONSOLE_TASK_URL`` with ``{agent}`` and ``{task_id}`` filled in ("" unset)."""
    if not template:
        return ""
    return template.replace("{agent}", task.agent).replace("{task_id}", task.task_id)


def _deliver_one(
    sender: Sender,
    destination: ReportDestination,
    task: TrackedTask,
    task_url: str,
    environ: Any,
) -> str:
    if destination.kubernetes:
        return destination.kubernetes.pending_status
    headers = {"Content-Type": "application/json"}
    if destination.github:
        path = github.comment_path(task.reply_to)
        if path is None:
            return "skipped: not a GitHub event with a pull request or commit"
        token = str(environ.get(destination.github.token_env, ""))
        if not token:
            return f"skipped: {destination.github.token_env} is not set"
        url = destination.github.api_url.rstrip("/") + path
        body: Any = github.comment(task, task_url)
        headers |= {
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {token}",
            "X-GitHub-Api-Version": GITHUB_API_VERSION,
        }
    elif destination.pagerduty:
        request = _pagerduty_note(destination, task, task_url, environ)
        if isinstance(request, str):
            return request
        url, body, extra = request
        headers |= extra
    elif destination.slack or destination.google_chat:
        chat = destination.slack or destination.google_chat
        assert chat is not None
        url = str(environ.get(chat.url_env, ""))
        if not url:
            return f"skipped: {chat.url_env} is not set"
        body = (formats.slack if destination.slack else formats.google_chat)(task, task_url)
    else:
        hook = destination.webhook
        assert hook is not None
        url = hook.url
        template = hook.body or {
            "hook": "{{.Hook}}",
            "task": "{{.TaskID}}",
            "state": "{{.TaskState}}",
            "finding": "{{.Finding}}",
            "link": "{{.AgentTaskURL}}",
        }
        body = formats.webhook(template, formats.values(task, task_url))
        headers.update(hook.headers)
    content = json.dumps(body, ensure_ascii=False).encode()
    if destination.webhook and destination.webhook.hmac_secret_env:
        key = str(environ.get(destination.webhook.hmac_secret_env, ""))
        if not key:
            return f"skipped: {destination.webhook.hmac_secret_env} is not set"
        digest = hmac.new(key.encode(), content, hashlib.sha256).hexdigest()
        headers["X-Signature-256"] = f"sha256={digest}"
    if destination.webhook:
        headers["Idempotency-Key"] = f"khook-report-{task.task_id}"
    try:
        response = sender.send(
            "POST",
            url,
            what=f"report {destination.kind}",
            deadline=Deadline(REPORT_BUDGET_S),
            headers=headers,
            content=content,
            # GitHub and PagerDuty take no idempotency key: a repeat could post twice
            idempotent=not (destination.github or destination.pagerduty),
        )
    except (TransientError, DispatchError) as exc:
        return f"failed: {_reason(str(exc))}"
    if 200 <= response.status_code < 300:
        return "sent"
    return f"failed: HTTP {response.status_code}: {_reason(error_text(response))}"


def _pagerduty_note(
    destination: ReportDestination, task: TrackedTask, task_url: str, environ: Any
) -> tuple[str, Any, dict[str, str]] | str:
    """URL, body and headers of a note on the task's PagerDuty incident, or why it is skipped."""
    assert destination.pagerduty is not None
    path = pagerduty.note_path(task.reply_to)
    if path is None:
        return "skipped: not a PagerDuty incident event"
    token = str(environ.get(destination.pagerduty.token_env, ""))
    if not token:
        return f"skipped: {destination.pagerduty.token_env} is not set"
    headers = {
        "Accept": PAGERDUTY_ACCEPT,
        "Authorization": f"Token token={token}",
        "From": destination.pagerduty.from_,
    }
    url = destination.pagerduty.api_url.rstrip("/") + path
    return url, pagerduty.note(task, task_url), headers


def _reason(text: str) -> str:
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"
