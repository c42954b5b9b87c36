"""Field rules: what a source's ``redact:`` block in plugins.yaml masks or drops on purpose.

Paths are dotted and start at an event field: ``message``, ``reason``, ``tags.<key>``,
``metadata.<key>.<key>``; ``*`` stands for any one key (or list index). A masked path's value
(a whole subtree, if it is one) becomes one mask; a dropped path's key is removed.
"""

from __future__ import annotations

import re
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

PiiKind = Literal["email", "phone", "ip"]

SENSITIVE_COLUMN: Final = re.compile(
    r"(?i)pass(?:word|wd|phrase)?|pwd|secret|token|ssn|social_?security|card|cvv|cvc|iban"
)
"""Searched in a CDC column name: columns named so are masked unless a table rule allows them."""

ROOTS: Final = frozenset(("message", "reason", "tags", "metadata", "group_key", "occurrence"))
"""What a field path may start with: the event fields redaction looks at."""


METADATA_ROOTS: Final = {
    "cdc": frozenset(("before", "after", "cdc")),
    "kafka": frozenset(("record", "kafka")),
}
"""The top-level metadata keys of the sources whose metadata has a fixed shape."""


def split_path(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def _check_paths(paths: list[str]) -> list[str]:
    for path in paths:
        parts = split_path(path)
        if parts[0] not in ROOTS:
            raise ValueError(
                f"{path!r}: a field path starts with one of {', '.join(sorted(ROOTS))}"
            )
        if any(not part for part in parts):
            raise ValueError(f"{path!r}: an empty segment")
        if parts[0] in ("message", "reason", "group_key", "occurrence") and len(parts) > 1:
            raise ValueError(f"{path!r}: {parts[0]} is text; it has no fields")
    return paths


class TableRules(BaseModel):
    """One CDC table's columns (in ``metadata.before`` and ``metadata.after``)."""

    model_config = ConfigDict(extra="forbid")

    allow: list[str] | None = None
    """An allow-list: only these columns pass; every other column is masked."""
    deny: list[str] = Field(default_factory=list)
    """Columns masked (on top of the sensitive-name default)."""


class RedactRules(BaseModel):
    """A source's ``redact:`` block in plugins.yaml."""

    model_config = ConfigDict(extra="forbid")

    mask: list[str] = Field(default_factory=list)
    """Field paths whose values are masked."""
    drop: list[str] = Field(default_factory=list)
    """Field paths removed from the event."""
    allow: list[str] = Field(default_factory=list)
    """Field paths the name-based defaults (secret-named keys, sensitive CDC columns) leave
    alone. The credential detectors still look at them."""
    pii: list[PiiKind] = Field(default_factory=list)
    """Personal data masked in every text of the source's events: ``email``, ``phone``,
    ``ip``."""
    tables: dict[str, TableRules] = Field(default_factory=dict)
    """CDC only: per table (``schema.table`` or ``table``), column allow- or deny-lists."""

    _check = field_validator("mask", "drop", "allow")(_check_paths)

    def problems_for(self, source: str) -> list[str]:
        """What in these rules cannot match the events ``source`` makes (``khook validate``)."""
        problems = []
        if self.tables and source != "cdc":
            problems.append(f"tables: only the cdc source has tables, not {source}")
        roots = METADATA_ROOTS.get(source)
        if roots is not None:
            for path in (*self.mask, *self.drop, *self.allow):
                parts = split_path(path)
                if parts[0] == "metadata" and len(parts) > 1 and parts[1] not in {*roots, "*"}:
                    problems.append(
                        f"{path!r}: {source} events carry metadata.{{{','.join(sorted(roots))}}}"
                    )
        return problems


class PathSet:
    """Compiled field paths: does a concrete path match one of them?"""

    __slots__ = ("_paths",)

    def __init__(self, paths: list[str]) -> None:
        self._paths = [split_path(p) for p in paths]

    def __bool__(self) -> bool:
        return bool(self._paths)

    def matches(self, path: tuple[str, ...]) -> bool:
        return any(
            len(p) == len(path) and all(a in ("*", b) for a, b in zip(p, path, strict=True))
            for p in self._paths
        )
