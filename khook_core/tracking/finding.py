"""The finding of a finished task: the agent's final text, cleaned and capped, and its usage.

A finding is untrusted text written by a model; it is cleaned of control characters here and
escaped again by each destination that shows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from khook_core import escaping

MAX_FINDING_CHARS: Final = 4000
"""A finding kept in the audit record at most (its full length is kept beside it): enough for
a summary and its evidence, small enough for a Firestore document and a table cell's source."""
USAGE_TOTALS: Final = ("totalTokenCount", "total_token_count", "totalTokens", "total_tokens")
USAGE_PARTS: Final = (
    ("promptTokenCount", "candidatesTokenCount"),
    ("input_tokens", "output_tokens"),
    ("prompt_tokens", "completion_tokens"),
)


@dataclass(frozen=True)
class Finding:
    text: str  # cleaned and capped
    chars: int  # the full text's length
    tokens: str  # total tokens the agent reported, "" when none


def of_task(task: Mapping[str, Any]) -> Finding:
    """The final text of a task on either wire: its artifacts' text parts, else its status
    message, else the last agent message of its history; and its token usage."""
    text = _artifacts_text(task.get("artifacts"))
    status = task.get("status") if isinstance(task.get("status"), dict) else {}
    assert isinstance(status, dict)
    if not text:
        text = message_text(status.get("message"))
    if not text:
        for message in reversed(task.get("history") or []):
            if isinstance(message, dict) and str(message.get("role", "")).lower() in (
                "agent",
                "role_agent",
            ):
                text = message_text(message)
                if text:
                    break
    full = text.strip()
    return Finding(
        text=escaping.clean(full, MAX_FINDING_CHARS, ascii_only=False, multiline=True),
        chars=len(full),
        tokens=_tokens(task, status),
    )


def message_text(message: Any) -> str:
    """The text parts of an A2A message, joined by newlines (both wires)."""
    if not isinstance(message, dict):
        return ""
    return _parts_text(message.get("parts"))


def _artifacts_text(artifacts: Any) -> str:
    if not isinstance(artifacts, list):
        return ""
    texts = [_parts_text(a.get("parts")) for a in artifacts if isinstance(a, dict)]
    return "\n".join(t for t in texts if t)


def _parts_text(parts: Any) -> str:
    if not isinstance(parts, list):
        return ""
    return "\n".join(
        str(p["text"]) for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)
    )


def _tokens(task: Mapping[str, Any], status: Mapping[str, Any]) -> str:
    """Total tokens from the usage metadata an agent attaches (ADK's ``usage_metadata`` under
    a vendor prefix, or OpenAI-style counts): the first found on the task, then its status
    message, then its artifacts."""
    places: list[Any] = [task.get("metadata")]
    message = status.get("message")
    if isinstance(message, dict):
        places.append(message.get("metadata"))
    for artifact in task.get("artifacts") or []:
        if isinstance(artifact, dict):
            places.append(artifact.get("metadata"))
    for metadata in places:
        if not isinstance(metadata, dict):
            continue
        for key, value in metadata.items():
            if "usage" in str(key).lower() and isinstance(value, dict):
                total = _total(value)
                if total is not None:
                    return str(total)
    return ""


def _total(usage: Mapping[str, Any]) -> int | None:
    for key in USAGE_TOTALS:
        value = _count(usage.get(key))
        if value is not None:
            return value
    for first, second in USAGE_PARTS:
        a, b = _count(usage.get(first)), _count(usage.get(second))
        if a is not None and b is not None:
            return a + b
    return None


def _count(value: Any) -> int | None:
    """A token count: JSON metadata that went through a protobuf ``Struct`` (A2A 1.0) carries
    every number as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if value >= 0 and float(value).is_integer() else None
