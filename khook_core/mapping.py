"""The mapping table: (source, eventType) → internal type, severity, tags, enabled.

Input is khook's plugin-branch ``event-mappings.yaml`` schema, loaded unchanged. Hooks match on
the kebab-case ``eventType``; ``internalType`` is metadata only (khook's plugin branch rewrote
the type before matching, so no Hook could ever match). A disabled mapping drops its events; an
unmapped type is dropped and counted, never an error.
"""

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from khook_core.configmodel import validate
from khook_core.errors import ConfigError, Problem
from khook_core.event import Severity
from khook_core.yamlfile import line_of, load_documents

KEBAB_CASE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclass(frozen=True)
class MappingEntry:
    """One row of the mapping table."""

    source: str
    event_type: str
    internal_type: str = ""
    severity: Severity = Severity.WARNING
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    enabled: bool = True
    # Kubernetes only: also fire for events of type Normal (dropped by default).
    include_normal: bool = False
    # CloudEvents only: the ``type`` (and optionally ``source``) glob this row translates.
    cloud_event_type: str = ""
    cloud_event_source: str = ""


@dataclass(frozen=True)
class MappingTable:
    """Lookup by (source, event type)."""

    entries: dict[tuple[str, str], MappingEntry] = field(default_factory=dict)

    def get(self, source: str, event_type: str) -> MappingEntry | None:
        return self.entries.get((source, event_type))

    def drop_reason(self, source: str, event_type: str) -> str | None:
        """Why an event of this type is dropped (``unmapped``, ``disabled``), or None."""
        entry = self.entries.get((source, event_type))
        if entry is None:
            return "unmapped"
        return None if entry.enabled else "disabled"

    def for_cloud_event(self, source: str, ce_type: str, ce_source: str) -> MappingEntry | None:
        """The first row of ``source`` (file order) whose CloudEvents globs match, else the row
        whose ``eventType`` is the CloudEvent ``type`` itself."""
        for entry in self.entries.values():
            if (
                entry.source == source
                and entry.cloud_event_type
                and fnmatch.fnmatchcase(ce_type, entry.cloud_event_type)
                and fnmatch.fnmatchcase(ce_source, entry.cloud_event_source or "*")
            ):
                return entry
        return self.entries.get((source, ce_type))

    def event_types(self, source: str | None = None) -> set[str]:
        """Every event type in the table (enabled or not), optionally of one source."""
        return {t for (s, t) in self.entries if source is None or s == source}

    @classmethod
    def load(cls, path: Path) -> "MappingTable":
        """Load and validate a mapping file.

        Raises:
            ConfigError: listing every malformed entry, unknown severity and duplicate key.
        """
        docs = load_documents(path)
        problems: list[Problem] = []
        entries: dict[tuple[str, str], MappingEntry] = {}
        if not docs:
            return cls()
        root = docs[0]
        if not isinstance(root, dict) or not isinstance(root.get("mappings"), list):
            raise ConfigError([Problem(str(path), line_of(root), "expected a 'mappings:' list")])
        for index, item in enumerate(root["mappings"]):
            if not isinstance(item, dict):
                problems.append(
                    Problem(
                        str(path),
                        line_of(root, "mappings"),
                        f"mappings[{index}]: expected a mapping, got {item!r}",
                    )
                )
                continue
            entry = _parse_entry(item, str(path), problems)
            if entry is None:
                continue
            key = (entry.source, entry.event_type)
            if key in entries:
                problems.append(
                    Problem(
                        str(path),
                        line_of(item),
                        f"duplicate mapping for eventSource={key[0]!r} eventType={key[1]!r}",
                    )
                )
                continue
            entries[key] = entry
        if problems:
            raise ConfigError(problems)
        return cls(entries)


class MappingRow(BaseModel):
    """One entry of ``event-mappings.yaml`` as written (khook's plugin-branch schema)."""

    model_config = ConfigDict(extra="forbid")

    eventSource: str = Field(min_length=1)
    eventType: str = Field(min_length=1, pattern=KEBAB_CASE.pattern)
    internalType: str = ""
    description: str = ""
    severity: Severity = Severity.WARNING
    tags: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True
    includeNormal: bool = False
    cloudEventType: str = ""
    """CloudEvents: the ``type`` glob (``dev.knative.apiserver.*``) translated to eventType."""
    cloudEventSource: str = ""
    """CloudEvents: an optional ``source`` glob narrowing ``cloudEventType``."""


class MappingFile(BaseModel):
    """The whole ``event-mappings.yaml``."""

    model_config = ConfigDict(extra="forbid")

    mappings: list[dict[str, Any]]


def _parse_entry(item: Any, file: str, problems: list[Problem]) -> MappingEntry | None:
    row = validate(MappingRow, item, file, problems)
    if row is None:
        return None
    return MappingEntry(
        source=row.eventSource,
        event_type=row.eventType,
        internal_type=row.internalType,
        severity=row.severity,
        description=row.description,
        tags=row.tags,
        enabled=row.enabled,
        include_normal=row.includeNormal,
        cloud_event_type=row.cloudEventType,
        cloud_event_source=row.cloudEventSource,
    )
