"""The stored form of an ``ApprovalRecord``, one mapping every approval store builds from."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from khook_core.state.base import ApprovalRecord

TIMES: Final = ("opened_at", "deadline", "decided_at")
FIELDS: Final = tuple(f.name for f in dataclasses.fields(ApprovalRecord))


def to_document(approval: ApprovalRecord, *, epoch: bool = False) -> dict[str, Any]:
    """Every field by name; times as datetimes (or epoch seconds with ``epoch``)."""
    doc = {name: getattr(approval, name) for name in FIELDS}
    if epoch:
        for name in TIMES:
            if doc[name] is not None:
                doc[name] = doc[name].timestamp()
    return doc


def from_document(doc: Mapping[str, Any]) -> ApprovalRecord:
    """Inverse of ``to_document``; times may come back as epoch seconds or datetimes."""
    values: dict[str, Any] = {}
    for name in FIELDS:
        value = doc.get(name)
        if name in TIMES:
            values[name] = _time(value)
        elif name == "version":
            values[name] = int(value or 0)
        else:
            values[name] = str(value or "")
    for name in ("opened_at", "deadline"):
        if values[name] is None:
            values[name] = datetime.fromtimestamp(0, UTC)
    return ApprovalRecord(**values)


def _time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, datetime):
        return datetime.fromtimestamp(value.timestamp(), UTC).replace(microsecond=value.microsecond)
    return datetime.fromisoformat(str(value))
