"""What can reach a hook: the source names there are, and the event types each source produces.

A hook whose ``sources`` names nothing that exists, or whose ``eventType`` none of its sources
produces, loads fine and never fires; the catalog lets the loader refuse both at load time.
A source produces an event type when the mapping table has a row for that pair (enabled or
not: a disabled row is a deliberate, documented switch, and the hook fires once it is turned
back on). Types a source declares but the mapping table lacks are dropped as ``unmapped`` by
the pipeline, so they do not count.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

DEFAULT_SOURCES: Final = ("kubernetes",)
"""The sources of a Hook without ``spec.sources``: a plain khook Hook is a Kubernetes hook."""


@dataclass(frozen=True)
class EventCatalog:
    """Source names (installed sources and the mapping table's) and each source's event types.

    Args:
        types_by_source: per ``eventSource`` of the mapping table, its ``eventType`` values.
        installed: the names of the installed sources (enabled or not: a source disabled in
            one function is still served by its own).
    """

    types_by_source: Mapping[str, frozenset[str]]
    installed: frozenset[str] = frozenset()
    sources: frozenset[str] = field(init=False)
    event_types: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", self.installed | frozenset(self.types_by_source))
        types = frozenset().union(*self.types_by_source.values())
        object.__setattr__(self, "event_types", types)

    @classmethod
    def from_pairs(
        cls, pairs: Iterable[tuple[str, str]], installed: Collection[str] = ()
    ) -> EventCatalog:
        """From (source, event type) pairs, such as the mapping table's keys."""
        by_source: dict[str, set[str]] = {}
        for source, event_type in pairs:
            by_source.setdefault(source, set()).add(event_type)
        return cls({s: frozenset(t) for s, t in by_source.items()}, frozenset(installed))

    def source_problem(self, name: str) -> str | None:
        """Why ``name`` cannot be a hook's source (with the nearest known name), or None."""
        if name in self.sources:
            return None
        return (
            f"unknown source {name!r} (installed or in the mapping table: "
            f"{', '.join(sorted(self.sources))}){_did_you_mean(name, self.sources)}"
        )

    def event_type_problem(self, event_type: str, sources: Collection[str]) -> str | None:
        """Why no event of ``event_type`` from ``sources`` can ever reach a hook, or None."""
        if event_type not in self.event_types:
            return (
                f"unknown eventType {event_type!r} (known: {', '.join(sorted(self.event_types))})"
                f"{_did_you_mean(event_type, self.event_types)}; a new type needs a row in "
                "event-mappings.yaml (eventSource, eventType): see docs/hooks.md, "
                '"Adding an event type: a mapping row"'
            )
        if any(event_type in self.types_by_source.get(s, ()) for s in sources):
            return None
        producers = sorted(s for s, types in self.types_by_source.items() if event_type in types)
        return (
            f"{event_type!r} never fires: the mapping table has it for {', '.join(producers)} "
            f"only, not for {_sources_text(sources)}; add the source to spec.sources, or a "
            "mapping row to event-mappings.yaml"
        )


def _sources_text(sources: Collection[str]) -> str:
    names = ", ".join(sorted(sources))
    if set(sources) == set(DEFAULT_SOURCES):
        return f"{names} (the source of a Hook without spec.sources)"
    return f"this hook's sources {names}" if len(sources) > 1 else f"this hook's source {names}"


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    """``; did you mean 'x'?``: the closest known name, when one is close enough."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
