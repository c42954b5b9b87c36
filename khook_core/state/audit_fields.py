"""The audit record's one field list, and the stored forms every backend builds from it.

``Firing`` (``state/base.py``) is the definition: the SQLite columns, the Firestore document
and the CLI's JSON are all derived from its dataclass fields here, so a new field is one edit
there. Two fields have a kind of their own: ``at``, a timezone-aware ``datetime`` (a timestamp
in Firestore, which its ordering and TTL need; epoch seconds in SQLite), and ``extra``, a
mapping of text (a map in Firestore, JSON text in SQLite). Every other field is text, and a
record written before a field existed reads it back as empty.
"""

from __future__ import annotations

import dataclasses
import json
import operator
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from khook_core.state.base import DedupKey, Firing

__all__ = [
    "COLUMNS",
    "FIELDS",
    "TEXT_FIELDS",
    "from_document",
    "from_row",
    "to_document",
    "to_row",
]

_OWN_KIND: Final = ("at", "extra")
_TEXT_TYPES: Final = ("str", "DedupKey")  # annotations as written (postponed evaluation)

FIELDS: Final = tuple(f.name for f in dataclasses.fields(Firing))
"""Every field of an audit record, in the dataclass's order."""
TEXT_FIELDS: Final = tuple(name for name in FIELDS if name not in _OWN_KIND)
"""The fields stored as plain text."""
COLUMNS: Final = ("at", *TEXT_FIELDS, "extra")
"""The order of a stored row (``to_row``/``from_row``)."""
_TEXTS: Final = operator.attrgetter(*TEXT_FIELDS)
"""The text fields of a firing as one tuple, in one C call (``to_row`` runs per firing)."""

for _field in dataclasses.fields(Firing):
    if _field.name not in _OWN_KIND and _field.type not in _TEXT_TYPES:
        # Fail at import, not on the first record: every store would need a new codec.
        raise TypeError(
            f"Firing.{_field.name}: {_field.type} is not text; audit fields other than "
            f"{', '.join(_OWN_KIND)} are str, which every store keeps as text"
        )


def to_document(firing: Firing) -> dict[str, Any]:
    """The firing as a flat mapping; ``at`` stays a timezone-aware ``datetime``."""
    doc: dict[str, Any] = {name: getattr(firing, name) for name in TEXT_FIELDS}
    doc["at"] = firing.at
    doc["extra"] = dict(firing.extra)
    return doc


def from_document(doc: Mapping[str, Any]) -> Firing:
    """Inverse of ``to_document``; missing text fields read as empty (older records)."""
    at = doc.get("at")
    if not isinstance(at, datetime):
        at = datetime.fromisoformat(str(at)) if at else datetime.fromtimestamp(0, UTC)
    # Plain datetime, not a client library's subclass (Firestore's DatetimeWithNanoseconds).
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
    values = {name: str(doc.get(name) or "") for name in TEXT_FIELDS}
    extra = doc.get("extra") or {}
    return Firing(
        key=DedupKey(values.pop("key")),
        at=at,
        extra={str(k): str(v) for k, v in extra.items()},
        **values,
    )


def to_row(firing: Firing) -> tuple[object, ...]:
    """The firing as a row of ``COLUMNS``: ``at`` in epoch seconds, ``extra`` as JSON text."""
    return (
        firing.at.timestamp(),
        *_TEXTS(firing),
        json.dumps(firing.extra),
    )


def from_row(row: Sequence[Any]) -> Firing:
    """Inverse of ``to_row``."""
    at, *texts, extra = row
    return from_document(
        {
            **dict(zip(TEXT_FIELDS, texts, strict=True)),
            "at": datetime.fromtimestamp(at, UTC),
            "extra": json.loads(extra),
        }
    )
