"""Storm control's held-back records: per-event summaries merged into one backlog per key.

Split from ``storm.records`` (which still exports every name here, loading this module on
first use) so a function whose events are never held back creates none of these dataclasses
at its cold start: building and merging them is what a storm, a silence or a budget does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from khook_core.event import Event

MAX_SUMMARY_ITEMS = 20
"""Distinct resources or reasons kept in a backlog summary; the count stays exact beyond it."""


@dataclass(frozen=True)
class Summary:
    """Events held back (coalesced or over budget), aggregated so storage stays flat in a storm."""

    count: int
    first: datetime
    last: datetime
    resources: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    truncated: bool = False
    """More distinct resources or reasons than ``MAX_SUMMARY_ITEMS`` were held: lists are cut."""

    def merge(self, other: Summary) -> Summary:
        resources, cut_resources = _union(self.resources, other.resources)
        reasons, cut_reasons = _union(self.reasons, other.reasons)
        return Summary(
            count=self.count + other.count,
            first=min(self.first, other.first),
            last=max(self.last, other.last),
            resources=resources,
            reasons=reasons,
            truncated=self.truncated or other.truncated or cut_resources or cut_reasons,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "count": self.count,
            "first": self.first.isoformat(),
            "last": self.last.isoformat(),
            "resources": list(self.resources),
            "reasons": list(self.reasons),
            "truncated": self.truncated,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Summary:
        return cls(
            count=int(str(data["count"])),
            first=datetime.fromisoformat(str(data["first"])),
            last=datetime.fromisoformat(str(data["last"])),
            resources=tuple(str(r) for r in data.get("resources", []) or []),  # type: ignore[attr-defined]
            reasons=tuple(str(r) for r in data.get("reasons", []) or []),  # type: ignore[attr-defined]
            truncated=bool(data.get("truncated", False)),
        )


@dataclass(frozen=True)
class Backlog:
    """What one backlog key holds: the summary of its events, and what a later run needs.

    ``hook`` and ``event`` (the latest held event, as JSON) let the sweep start the run a quiet
    group would otherwise never get, long after the function that held them has returned.
    """

    summary: Summary
    hook: str  # namespace/name
    event: str  # JSON of the latest held event

    def merge(self, other: Backlog) -> Backlog:
        """The summaries combined; the latest event (and its hook) stands for them."""
        latest = other if other.summary.last >= self.summary.last else self
        return Backlog(self.summary.merge(other.summary), latest.hook, latest.event)

    def to_json(self) -> dict[str, object]:
        return {"summary": self.summary.to_json(), "hook": self.hook, "event": self.event}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Backlog:
        summary = data["summary"]
        if not isinstance(summary, dict):
            raise ValueError("backlog without a summary")
        return cls(
            Summary.from_json(summary), str(data.get("hook", "")), str(data.get("event", ""))
        )


def summary_of(event: Event) -> Summary:
    """A one-event summary, to merge into a backlog."""
    return Summary(
        count=1,
        first=event.first_timestamp or event.timestamp,
        last=event.timestamp,
        resources=(event.resource.ref(),),
        reasons=(event.reason,) if event.reason else (),
    )


def backlog_of(hook: str, event: Event, summary: Summary | None = None) -> Backlog:
    """A backlog entry of ``hook`` for ``event`` (or for ``summary``, which ``event`` stands
    for)."""
    return Backlog(summary or summary_of(event), hook, event.model_dump_json())


def _union(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[tuple[str, ...], bool]:
    """The items of both, first seen first, at most ``MAX_SUMMARY_ITEMS``; and whether any
    item had to be left out."""
    merged = list(a)
    cut = False
    for item in b:
        if item not in merged:
            if len(merged) < MAX_SUMMARY_ITEMS:
                merged.append(item)
            else:
                cut = True
    return tuple(merged), cut
