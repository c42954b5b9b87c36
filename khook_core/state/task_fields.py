"""The stored form of a ``TrackedTask``, one mapping every task store builds from.

Times stay timezone-aware ``datetime`` values here (a Firestore timestamp, epoch seconds in
SQLite); ``finished_at`` is absent until the task ends.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from khook_core.state.base import DedupKey, TrackedTask

TIMES: Final = ("created_at", "deadline", "next_check", "finished_at")
INTS: Final = ("checks", "finding_chars", "version", "approval_deadline_s")
FIELDS: Final = tuple(f.name for f in dataclasses.fields(TrackedTask))


def to_document(task: TrackedTask) -> dict[str, Any]:
    """Every field by name (``finished_at`` None while the task runs)."""
    return {name: getattr(task, name) for name in FIELDS}


def from_document(doc: Mapping[str, Any]) -> TrackedTask:
    """Inverse of ``to_document``; times may come back as epoch seconds or datetimes."""
    values: dict[str, Any] = {}
    for name in FIELDS:
        value = doc.get(name)
        if name in TIMES:
            values[name] = _time(value)
        elif name in INTS:
            values[name] = int(value or 0)
        elif name == "cancel":
            values[name] = bool(value)
        else:
            values[name] = str(value or "")
    values["key"] = DedupKey(values["key"])
    if values["finished_at"] is None and doc.get("finished_at") is None:
        values["finished_at"] = None
    for name in ("created_at", "deadline", "next_check"):
        if values[name] is None:
            values[name] = datetime.fromtimestamp(0, UTC)
    return TrackedTask(**values)


def _time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, datetime):
        # A plain datetime, not a client library's subclass (DatetimeWithNanoseconds).
        return datetime.fromtimestamp(value.timestamp(), UTC).replace(microsecond=value.microsecond)
    return datetime.fromisoformat(str(value))
