"""Field rules: what a source's ``redact:`` block in plugins.yaml masks or drops on purpose.

Paths are dotted and start at an event field: ``message``, ``reason``, ``tags.<key>``,
``metadata.<key>.<key>``; ``*`` stands for any one key (or list index). A masked path's value
(a whole subtree, if it is one) becomes one mask; a dropped path's key is removed.
"""

import re
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

PiiKind = Literal["email", "phone", "ip"]

SENSITIVE_COLUMN: Final = re.compile(
    r"(?i)pass(?:word|wd|phrase)?|pwd|secret|token|ssn|social_?security|card|cvv|cvc|iban"
)
"""Searched in a CDC column name: columns named so are masked unless a table rule allows them."""

ROOTS: Final = frozenset(("message", "reason", "tags", "metadata", "group_key", "occurrence"))
"""What a field path may start with: the event fields redaction looks at."""


ANY: Final = None
"""A metadata value of any shape below its key (a Kafka record, a CDC row, a workload)."""
_FLAT, _MAP = 0, 1

SHAPES: Final[dict[str, dict[str, int | None]]] = {
    "kubernetes": dict.fromkeys(
        (
            "kind",
            "apiVersion",
            "count",
            "type",
            "reportingController",
            "reportingInstance",
            "fieldPath",
            "api",
            "cluster",
        ),
        _FLAT,
    ),
    "alertmanager": {
        **dict.fromkeys(
            (
                "groupKey",
                "receiver",
                "externalURL",
                "version",
                "fingerprint",
                "startsAt",
                "endsAt",
                "generatorURL",
                "silenceURL",
                "dashboardURL",
                "panelURL",
                "valueString",
                "orgId",
            ),
            _FLAT,
        ),
        "annotations": _MAP,
        "values": _MAP,
    },
    "gcp": {
        **dict.fromkeys(
            (
                "build_id",
                "log_url",
                "commit_sha",
                "trigger_id",
                "failure_type",
                "status_detail",
                "url",
                "incident_id",
                "project",
                "observed_value",
                "threshold_value",
            ),
            _FLAT,
        ),
        "resource_labels": _MAP,
        "workload": ANY,
    },
    "kafka": {"record": ANY, "kafka": _MAP, "record_truncated": _FLAT},
    "cdc": {"before": ANY, "after": ANY, "cdc": _MAP},
}
"""The metadata each built-in source makes: its top-level keys, and how many keys deep a path
may go below each (``0`` a value, ``1`` a flat map, ``ANY`` any JSON). The webhook source is
not here: its metadata is what each endpoint's field map names."""

OPEN: Final = frozenset(("kafka", "cdc"))
"""Sources whose field maps (a preset, a topic's or a table's rule) may add top-level metadata
keys of their own beside ``SHAPES``: only the depth below the known keys is checked."""

NO_TAGS: Final = frozenset(("kubernetes",))
"""Sources whose events carry no tags when redaction runs (a Kubernetes event's come from its
mapping row, after redaction)."""


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
        if parts[0] == "tags" and len(parts) > 2:
            raise ValueError(f"{path!r}: a tag is text; tags.<key> is as deep as tags go")
    return paths


def _new_list() -> list[Any]:
    """A new empty list (``configmodel.new_list``: a factory pydantic need not tokenize)."""
    return []


class TableRules(BaseModel):
    """One CDC table's columns (in ``metadata.before`` and ``metadata.after``)."""

    model_config = ConfigDict(extra="forbid")

    allow: list[str] | None = None
    """An allow-list: only these columns pass; every other column is masked."""
    deny: list[str] = Field(default_factory=_new_list)
    """Columns masked (on top of the sensitive-name default)."""


class RedactRules(BaseModel):
    """A source's ``redact:`` block in plugins.yaml."""

    model_config = ConfigDict(extra="forbid")

    mask: list[str] = Field(default_factory=_new_list)
    """Field paths whose values are masked."""
    drop: list[str] = Field(default_factory=_new_list)
    """Field paths removed from the event."""
    allow: list[str] = Field(default_factory=_new_list)
    """Field paths the name-based defaults (secret-named keys, sensitive CDC columns) leave
    alone. The credential detectors still look at them."""
    pii: list[PiiKind] = Field(default_factory=_new_list)
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
        for path in (*self.mask, *self.drop, *self.allow):
            problem = _misfit(split_path(path), source)
            if problem:
                problems.append(f"{path!r}: {problem}")
        return problems


def _misfit(parts: tuple[str, ...], source: str) -> str:
    """Why a path cannot match an event of ``source`` (``SHAPES``, ``NO_TAGS``), or ""."""
    if parts[0] == "tags" and source in NO_TAGS:
        return f"{source} events carry no tags when redaction runs"
    shape = SHAPES.get(source)
    if parts[0] != "metadata" or shape is None or len(parts) < 2:
        return ""
    keys = [parts[1]] if parts[1] != "*" else list(shape)
    depths = [shape[key] for key in keys if key in shape]
    if not depths or (parts[1] == "*" and source in OPEN):
        if source in OPEN:
            return ""
        return f"{source} events carry metadata.{{{','.join(sorted(shape))}}}"
    below = len(parts) - 2
    if all(depth is not ANY and below > depth for depth in depths):
        deepest = max(depth for depth in depths if depth is not None)
        what = "a value" if deepest == _FLAT else "a flat map"
        return f"metadata.{parts[1]} of {source} events is {what}; the path goes deeper"
    return ""


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
