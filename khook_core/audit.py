"""Audit records (``Firing``) as plain data: for document stores, ``--json`` output and logs.

One field list, so the Firestore document, the CLI's JSON and its text line cannot drift apart.
Times stay ``datetime`` in documents (Firestore stores them as timestamps, which its TTL and
ordering need) and become RFC 3339 text only in JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from khook_core.state.base import DedupKey, Firing

__all__ = ["format_line", "from_document", "to_document", "to_json"]

_TEXT_FIELDS = (
    "key",
    "hook",
    "event_id",
    "event_type",
    "source",
    "resource",
    "agent",
    "prompt_hash",
    "outcome",
    "task_id",
    "error",
)


def to_document(firing: Firing) -> dict[str, Any]:
    """The firing as a flat mapping; ``at`` stays a timezone-aware ``datetime``."""
    doc: dict[str, Any] = {name: getattr(firing, name) for name in _TEXT_FIELDS}
    doc["at"] = firing.at
    doc["extra"] = dict(firing.extra)
    return doc


def from_document(doc: Mapping[str, Any]) -> Firing:
    """Inverse of ``to_document``; missing text fields read as empty (older records)."""
    at = doc.get("at")
    if not isinstance(at, datetime):
        at = datetime.fromisoformat(str(at)) if at else datetime.fromtimestamp(0, UTC)
    # Plain datetime, not the client library's subclass (DatetimeWithNanoseconds).
    at = datetime(
        at.year,
        at.month,
        at.day,
        at.hour,
        at.minute,
        at.second,
        at.microsecond,
        tzinfo=at.tzinfo or UTC,
    )
    values = {name: str(doc.get(name) or "") for name in _TEXT_FIELDS}
    extra = doc.get("extra") or {}
    return Firing(
        key=DedupKey(values.pop("key")),
        at=at,
        extra={str(k): str(v) for k, v in extra.items()},
        **values,
    )


def to_json(firing: Firing) -> dict[str, Any]:
    """JSON-ready: ``at`` as RFC 3339 UTC text."""
    doc = to_document(firing)
    doc["at"] = firing.at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return doc


def format_line(firing: Firing) -> str:
    """One human-readable line: time, outcome, hook, event, target, task."""
    at = firing.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = (
        f"{at}  {firing.outcome:<18} {firing.hook}  {firing.event_type} "
        f"{firing.resource}  -> {firing.agent}"
    )
    if firing.task_id:
        line += f"  task={firing.task_id}"
    if firing.error:
        line += f"  error={firing.error[:120]}"
    return line
