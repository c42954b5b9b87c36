"""A finding as a note on the PagerDuty incident its event came from.

``reply_target`` reads the incident id from an event of the webhook source's ``pagerduty``
preset when the task starts (the preset makes the incident id the event's occurrence; the task
keeps ``pagerduty incident <id>`` as ``TrackedTask.reply_to``), and ``note_path`` turns it into
the REST path that adds a note (``POST /incidents/{id}/notes``).

A finding is model output. PagerDuty shows a note as plain text, so it is sent as text only:
every character a reader could not see or could misread (controls, bidirectional overrides,
zero-width characters) is made visible, the JSON encoder escapes the rest, and the note is cut
well inside PagerDuty's size limit.
"""

from __future__ import annotations

import re
from typing import Any, Final

from khook_core import escaping
from khook_core.sources.webhook_pagerduty import EVENT_TYPE
from khook_core.state.base import TrackedTask

FINDING_CHARS: Final = 4000
"""The whole stored finding (``tracking.finding.MAX_FINDING_CHARS``)."""
NOTE_CHARS: Final = 25_000
"""The most a note may carry, our own lines included (PagerDuty documents no figure; its UI
takes notes of this size)."""
_INCIDENT: Final = re.compile(r"^[A-Za-z0-9]{1,64}$")
_PREFIX: Final = "pagerduty incident "


def reply_target(source: str, event_type: str, occurrence: str) -> str:
    """``pagerduty incident <id>``; "" when the event is not the ``pagerduty`` preset's."""
    if source != "webhook" or event_type != EVENT_TYPE or not _INCIDENT.match(occurrence):
        return ""
    return _PREFIX + occurrence


def note_path(reply_to: str) -> str | None:
    """``/incidents/{id}/notes``; None for a target this module did not write."""
    incident = reply_to.removeprefix(_PREFIX)
    if incident == reply_to or not _INCIDENT.match(incident):
        return None
    return f"/incidents/{incident}/notes"


def note(task: TrackedTask, task_url: str) -> dict[str, Any]:
    """The note's body: a heading line of our own words, the finding as text, the task link."""
    text = task.finding or f"(no text; the task ended {task.state})"
    finding = escaping.clean(text, FINDING_CHARS, ascii_only=False, multiline=True)
    heading = escaping.clean(
        f"khook: the agent's task for {task.event_type} ended {task.state}", 200, ascii_only=False
    )
    lines = [heading, "", finding]
    if task_url.startswith(("https://", "http://")):
        lines += ["", f"Agent task: {escaping.clean(task_url, 2000)}"]
    content = escaping.cut("\n".join(lines), NOTE_CHARS)
    return {"note": {"content": content}}
