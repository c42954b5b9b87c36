"""Message bodies for each destination, with the finding escaped for that format.

A finding is model output: untrusted. Each format gets it as literal text only:

- **Slack** (Block Kit, ``mrkdwn``): ``&``, ``<`` and ``>`` become ``&amp;`` ``&lt;`` ``&gt;``,
  Slack's own escaping, so ``<!channel>``, ``<@U123>`` and ``<https://x|label>`` arrive as
  text, never as a mention or a link with a made-up label; a section's text is at most 3,000
  characters;
- **Google Chat** (a card's ``textParagraph``, which reads a subset of HTML): HTML-escaped,
  so neither ``<users/all>`` nor ``<a href>`` works; no plain ``text`` field (it would parse
  ``<users/…>`` mentions);
- **webhook**: values placed into a JSON body as strings (the JSON encoder escapes them).

Before that, every character a reader could not see or could misread is made visible and the
text is cut (``escaping.clean``).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any, Final

from khook_core import escaping
from khook_core.reportconfig import PLACEHOLDER
from khook_core.state.base import TrackedTask

SLACK_SECTION_CHARS: Final = 3000
"""Block Kit's limit of a section's text."""
SLACK_HEADER_CHARS: Final = 150
"""Block Kit's limit of a header's plain text."""
CHAT_PARAGRAPH_CHARS: Final = 4000
"""Kept well under Google Chat's 32,000-byte message limit, escapes included."""
FALLBACK_CHARS: Final = 300
WEBHOOK_FINDING_CHARS: Final = 4000
"""The whole stored finding (``tracking.finding.MAX_FINDING_CHARS``)."""


def slack_escape(text: str) -> str:
    """Slack's three escapes: the only characters its ``mrkdwn`` gives control meaning."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_section(text: str) -> str:
    """``text`` escaped, cut (before escaping, never inside an entity) to fit a section."""
    escaped = slack_escape(text)
    while len(escaped) > SLACK_SECTION_CHARS:
        text = escaping.cut(text, len(text) - (len(escaped) - SLACK_SECTION_CHARS))
        escaped = slack_escape(text)
    return escaped


def _finding(task: TrackedTask, limit: int) -> str:
    text = task.finding or f"(no text; the task ended {task.state})"
    return escaping.clean(text, limit, ascii_only=False, multiline=True)


def title(task: TrackedTask) -> str:
    return f"khook {task.hook}: {task.event_type} {task.resource} — {task.state}"


def slack(task: TrackedTask, task_url: str) -> dict[str, Any]:
    """A Slack incoming-webhook body: ``text`` (the notification fallback) and Block Kit."""
    body = _slack_section(_finding(task, SLACK_SECTION_CHARS))
    heading = escaping.clean(title(task), SLACK_HEADER_CHARS, ascii_only=False)
    context = f"task `{slack_escape(escaping.clean(task.task_id, 100))}`"
    if task_url:
        context += f" · <{slack_escape(task_url)}|agent task>"
    return {
        "text": slack_escape(escaping.clean(f"{title(task)}: {task.finding}", FALLBACK_CHARS)),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": heading}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }


def google_chat(task: TrackedTask, task_url: str) -> dict[str, Any]:
    """A Google Chat webhook body: one card (``cardsV2``), every value HTML-escaped."""
    paragraph = html.escape(_finding(task, CHAT_PARAGRAPH_CHARS)).replace("\n", "<br>")
    widgets: list[dict[str, Any]] = [{"textParagraph": {"text": paragraph}}]
    if task_url:
        widgets.append(
            {
                "buttonList": {
                    "buttons": [{"text": "agent task", "onClick": {"openLink": {"url": task_url}}}]
                }
            }
        )
    return {
        "cardsV2": [
            {
                "cardId": f"khook-{escaping.clean(task.task_id, 60)}",
                "card": {
                    "header": {
                        "title": html.escape(escaping.clean(title(task), 200, ascii_only=False))
                    },
                    "sections": [{"widgets": widgets}],
                },
            }
        ]
    }


def webhook(template: Any, values: Mapping[str, str]) -> Any:
    """The report body template with each ``{{.Name}}`` replaced by its value (as text)."""
    if isinstance(template, str):
        return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)
    if isinstance(template, dict):
        return {k: webhook(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [webhook(v, values) for v in template]
    return template


def values(task: TrackedTask, task_url: str) -> dict[str, str]:
    """The placeholders of a report webhook body."""
    return {
        "Finding": _finding(task, WEBHOOK_FINDING_CHARS),
        "TaskState": task.state,
        "AgentTaskURL": task_url,
        "TaskID": task.task_id,
        "Hook": task.hook,
    }
