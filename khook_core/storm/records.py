"""What storm control holds back: per-event summaries merged into one backlog per key.

Pure data (no store, no hook): the state backends persist these records and storm control
builds and merges them, so both depend on this module and on nothing of each other. The
summary and backlog records themselves are in ``storm/backlogs.py``, loaded (their dataclasses
created) when something is first held back; every name is exported from here too.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple, NewType

from khook_core import lazyexports

if TYPE_CHECKING:
    from khook_core.storm.backlogs import MAX_SUMMARY_ITEMS as MAX_SUMMARY_ITEMS
    from khook_core.storm.backlogs import Backlog as Backlog
    from khook_core.storm.backlogs import Summary as Summary
    from khook_core.storm.backlogs import backlog_of as backlog_of
    from khook_core.storm.backlogs import summary_of as summary_of

DedupKey = NewType("DedupKey", str)
"""A claim's key: hook + source + event type + resource (+ occurrence) for a firing, or one of
storm control's own claims (a coalescing window, a probe, a sweep run; see ``storm.keys``)."""

_BACKLOGS = frozenset({"MAX_SUMMARY_ITEMS", "Backlog", "Summary", "backlog_of", "summary_of"})
"""The names defined in ``storm/backlogs.py`` and exported from here on first use."""


__getattr__ = lazyexports.forwarding(__name__, "khook_core.storm.backlogs", _BACKLOGS)


class BacklogKind(StrEnum):
    """Whose run a backlog waits for (the value is what the backends store)."""

    GROUP = "group"
    """A coalescing group's: the events its window held back."""
    BUDGET = "budget"
    """A hook's per event type: the events its budgets held back."""
    SILENCE = "silence"
    """A hook's per silence (or window occurrence): what it muted, run once it has ended."""


_STORED_PREFIX = {
    BacklogKind.GROUP: "coalesce",
    BacklogKind.BUDGET: "budget",
    BacklogKind.SILENCE: "silence",
}
"""The prefix of each kind in the stored key, as every backlog was ever written."""


class BacklogKey(NamedTuple):
    """The address of one backlog: its kind and, within it, its group or hook's id.

    Built by ``storm.keys``; the backends store ``stored`` (the key string backlogs have
    always had, so existing data stays valid) with the kind and name beside it, and hand the
    typed key back, so no caller reads a kind out of a string.
    """

    kind: BacklogKind
    name: str
    """``hook|event type|group`` for a group, ``hook|event type`` for a budget."""

    @property
    def stored(self) -> str:
        """The key string the backends index by (and the logs show)."""
        return f"{_STORED_PREFIX[self.kind]}|{self.name}"

    def __str__(self) -> str:
        return self.stored

    @classmethod
    def from_stored(cls, stored: str) -> BacklogKey:
        """The key of a backlog written before the kind was stored beside it (SQLite schema
        3, Firestore documents without ``kind``): the one place a stored key is read."""
        prefix, _, name = stored.partition("|")
        if prefix == _STORED_PREFIX[BacklogKind.GROUP]:
            return cls(BacklogKind.GROUP, name)
        if prefix == _STORED_PREFIX[BacklogKind.SILENCE]:
            return cls(BacklogKind.SILENCE, name)
        return cls(BacklogKind.BUDGET, name)


def summary_in(backlog: Backlog | None) -> Summary | None:
    """The summary a taken backlog holds (None: there was none)."""
    return None if backlog is None else backlog.summary


def merge(*summaries: Summary | None) -> Summary | None:
    present = [s for s in summaries if s is not None]
    if not present:
        return None
    result = present[0]
    for other in present[1:]:
        result = result.merge(other)
    return result
