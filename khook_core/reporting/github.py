"""A finding as a GitHub comment where its event came from: the pull request, else the commit.

``reply_target`` reads it from a GitHub event when the task starts (the task keeps it as
``TrackedTask.reply_to``): a failed ``workflow_run`` of a pull request is answered on that pull
request (an issue comment), another one on its head commit, a failed ``deployment_status`` on
the deployed commit (a deployment status takes no comments).

A finding is model output, and a comment is Markdown that GitHub renders: a ``@name`` there
notifies that user or team, and ``[text](url)`` disguises a link. So the finding goes into a
fenced code block, which GitHub renders verbatim (no mention, link, image or HTML), fenced with
more backticks than the longest run in the text so the text cannot close it, and cut.
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import quote

from khook_core import escaping
from khook_core.state.base import TrackedTask

FINDING_CHARS: Final = 4000
"""The whole stored finding; GitHub takes 65,536 characters."""
_REPO: Final = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_SHA: Final = re.compile(r"^[0-9a-f]{7,64}$")
_NUMBER: Final = re.compile(r"^[1-9][0-9]{0,9}$")


def reply_target(source: str, tags: dict[str, str], metadata: dict[str, Any]) -> str:
    """``<owner>/<repo> pull <n>`` or ``<owner>/<repo> commit <sha>``; "" when the event is not
    GitHub's or names neither."""
    repo = tags.get("repository", "")
    if source != "webhook" or "github_event" not in tags or not _REPO.match(repo):
        return ""
    pull = str(metadata.get("pull_request") or "")
    if _NUMBER.match(pull):
        return f"{repo} pull {pull}"
    sha = str(metadata.get("head_sha") or metadata.get("sha") or "")
    if _SHA.match(sha):
        return f"{repo} commit {sha}"
    return ""


def comment_path(reply_to: str) -> str | None:
    """The REST path that comments there (``issues/create-comment``,
    ``repos/create-commit-comment``); None for a target this module did not write."""
    parts = reply_to.split(" ")
    if len(parts) != 3 or not _REPO.match(parts[0]):
        return None
    owner, repo = (quote(p, safe="") for p in parts[0].split("/"))
    if parts[1] == "pull" and _NUMBER.match(parts[2]):
        return f"/repos/{owner}/{repo}/issues/{parts[2]}/comments"
    if parts[1] == "commit" and _SHA.match(parts[2]):
        return f"/repos/{owner}/{repo}/commits/{parts[2]}/comments"
    return None


def fenced(text: str) -> str:
    """``text`` in a code block its own backticks cannot close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def comment(task: TrackedTask, task_url: str) -> dict[str, str]:
    """The comment's body: a plain heading line of our own words, the finding fenced."""
    text = task.finding or f"(no text; the task ended {task.state})"
    finding = escaping.clean(text, FINDING_CHARS, ascii_only=False, multiline=True)
    heading = escaping.clean(
        f"khook: the agent's task for {task.event_type} ended {task.state}", 200, ascii_only=False
    )
    lines = [f"**{_plain(heading)}**", "", fenced(finding)]
    if task_url.startswith(("https://", "http://")):
        lines += ["", f"Agent task: <{quote(task_url, safe=':/?&=#%')}>"]
    return {"body": "\n".join(lines)}


def _plain(text: str) -> str:
    """Our heading, with every Markdown control character escaped (event types are ours, but
    a state or type must never start a mention or a link)."""
    return re.sub(r"([\\`*_{}\[\]()<>#+!|~@-])", r"\\\1", text)
