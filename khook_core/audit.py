"""Audit records (``Firing``) for people and scripts: ``khook firings --json`` and log lines.

A layer above the state stores: the stored forms live beside them (``state.audit_fields``),
and this module builds what is shown from the same field list, so the CLI's JSON cannot drift
from what the stores keep. The state package never imports it.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from khook_core.state import audit_fields
from khook_core.state.base import Firing

__all__ = ["format_line", "to_json"]


def to_json(firing: Firing) -> dict[str, Any]:
    """JSON-ready, every field in the record's order; ``at`` as ISO 8601 text with its offset."""
    doc: dict[str, Any] = {name: getattr(firing, name) for name in audit_fields.FIELDS}
    doc["at"] = firing.at.isoformat()
    doc["extra"] = dict(firing.extra)
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
