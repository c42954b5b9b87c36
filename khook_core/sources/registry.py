"""Discovering source plugins through the ``khook.sources`` entry-point group.

Built-in sources register in the same group as third-party ones, so there is one discovery path.
Plugins load lazily by name: a function needs only its own source, and one broken plugin never
stops the others (its ``PluginLoadError`` is kept in ``SourceRegistry.errors`` and reported by
name; only requests for that source fail).
"""

import re
from dataclasses import dataclass, field
from importlib.metadata import Distribution, EntryPoint, distributions
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from khook_core.configmodel import dotted, field_loc, locate, new_list, validate
from khook_core.errors import ConfigError, InvalidEventError, PluginLoadError, Problem
from khook_core.redaction.rules import RedactRules
from khook_core.sources.base import EventSource, SourceContext
from khook_core.yamlfile import line_of, load_documents

ENTRY_POINT_GROUP: Final = "khook.sources"


class PluginEntry(BaseModel):
    """One ``plugins:`` item of plugins.yaml (khook's plugin-design shape)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    enabled: bool = True
    path: str | None = None
    """Go shared objects in khook; meaningless in Python and reported as ignored."""
    config: dict[str, Any] = Field(default_factory=dict)
    redact: RedactRules | None = None
    """Fields of this source's events masked or dropped on purpose (docs/sources.md)."""

    @model_validator(mode="after")
    def _redact_fits(self) -> "PluginEntry":
        if self.redact is not None and (problems := self.redact.problems_for(self.name)):
            raise ValueError("redact: " + "; ".join(problems))
        return self


class PluginsFile(BaseModel):
    """The whole plugins.yaml; ``settings`` (khook's global plugin settings) is ignored."""

    model_config = ConfigDict(extra="forbid")

    plugins: list[PluginEntry] = Field(default_factory=new_list)
    settings: dict[str, Any] = Field(default_factory=dict)


@dataclass
class PluginSettings:
    """What plugins.yaml says: per source, enabled and raw config (with the line it sits on)."""

    entries: dict[str, PluginEntry] = field(default_factory=dict)
    lines: dict[str, int | None] = field(default_factory=dict)
    file: str = "plugins.yaml"
    notes: list[Problem] = field(default_factory=new_list)  # warnings, not errors
    raw: dict[str, Any] = field(default_factory=dict)  # the entries as written, for their lines

    def redact_rules(self) -> dict[str, RedactRules]:
        """Each source's ``redact:`` block, where it has one."""
        return {name: e.redact for name, e in self.entries.items() if e.redact is not None}

    @classmethod
    def load(cls, path: Path) -> "PluginSettings":
        if not path.exists():
            return cls(file=str(path))
        docs = load_documents(path)
        problems: list[Problem] = []
        parsed = validate(PluginsFile, docs[0] if docs else {}, str(path), problems)
        if parsed is None:
            raise ConfigError(problems)
        result = cls(file=str(path))
        raw_items = docs[0].get("plugins", []) if docs else []
        for item, raw in zip(parsed.plugins, raw_items, strict=True):
            if item.name in result.entries:
                problems.append(
                    Problem(str(path), line_of(raw), f"plugin {item.name!r} listed twice")
                )
            result.entries[item.name] = item
            result.lines[item.name] = line_of(raw)
            result.raw[item.name] = raw
            if item.path is not None:
                result.notes.append(
                    Problem(
                        str(path),
                        line_of(raw, "path"),
                        f"plugin {item.name!r}: 'path' is ignored (Python "
                        "sources are installed packages, not shared objects)",
                    )
                )
        if problems:
            raise ConfigError(problems)
        return result


def installed_points(group: str = ENTRY_POINT_GROUP) -> dict[str, EntryPoint]:
    """The entry points of ``group`` by name, as ``importlib.metadata.entry_points(group=...)``
    finds them (one distribution per name, the first on the path; a later name wins).

    ``entry_points()`` parses the entry points of every installed distribution, a cost every
    cold start pays; this one reads each ``entry_points.txt`` and parses only those that declare
    the group.
    """
    header = f"[{group}]"
    seen: set[str] = set()
    points: dict[str, EntryPoint] = {}
    for dist in distributions():
        name = _normalized_name(dist)
        if name in seen:  # a shadowed copy of a distribution found earlier on the path
            continue
        seen.add(name)
        text = dist.read_text("entry_points.txt")
        if not text or header not in text:
            continue
        for point in dist.entry_points.select(group=group):
            points[point.name] = point
    return points


def _normalized_name(dist: Distribution) -> str:
    """The name ``importlib.metadata`` tells distributions apart by: taken from the metadata
    directory's name where it can (cheap), else read from the metadata (PEP 503 folding)."""
    name = getattr(dist, "_normalized_name", None)
    if isinstance(name, str):
        return name
    return re.sub(r"[-_.]+", "_", dist.metadata["Name"] or "").lower()


class SourceRegistry:
    """Installed sources by name; each is imported and configured on first use."""

    def __init__(
        self,
        context: SourceContext,
        plugins: PluginSettings | None = None,
        disabled: frozenset[str] = frozenset(),
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.context = context
        self.plugins = plugins or PluginSettings()
        self.disabled = disabled
        self._points = installed_points()
        self._classes: dict[str, Any] = dict(extra or {})
        self._instances: dict[str, EventSource] = {}
        self.errors: dict[str, PluginLoadError] = {}

    def names(self) -> list[str]:
        """Installed, not disabled sources."""
        names = set(self._points) | set(self._classes)
        return sorted(n for n in names if self.enabled(n))

    def installed_names(self) -> frozenset[str]:
        """Every installed source, enabled or not (a hook may name one another function serves)."""
        return frozenset(self._points) | frozenset(self._classes)

    def installed(self, name: str) -> bool:
        """Whether a source of this name is installed (enabled or not)."""
        return name in self._points or name in self._classes

    def enabled(self, name: str) -> bool:
        """Not disabled by plugins.yaml or ``KHOOK_DISABLE_SOURCES`` (installed or not)."""
        if "all" in self.disabled or name in self.disabled:
            return False
        entry = self.plugins.entries.get(name)
        return entry is None or entry.enabled

    def source_class(self, name: str) -> Any:
        """Import a source's class (without constructing it).

        Raises:
            InvalidEventError: no such source is installed (status 404).
            PluginLoadError: plugins.yaml lists it but it is not installed, or it fails to import.
        """
        if name in self._classes:
            return self._classes[name]
        if name in self.errors:
            raise self.errors[name]
        point = self._points.get(name)
        if point is None:
            installed = ", ".join(self.names())
            if name in self.plugins.entries:
                raise self._fail(name, f"not installed (installed: {installed})")
            raise InvalidEventError(
                f"unknown source {name!r} (installed: {installed})", field="source", status=404
            )
        try:
            cls = point.load()
            for attr in ("name", "version", "event_types", "normalize"):
                if not hasattr(cls, attr):
                    raise TypeError(f"missing attribute {attr!r} required by EventSource")
        except Exception as exc:
            reason = f"cannot load {point.value}{_origin(point)}: {_one_line(exc)}"
            if name not in self.plugins.entries:
                reason += " (uninstall it, or disable it in plugins.yaml or KHOOK_DISABLE_SOURCES)"
            raise self._fail(name, reason) from exc
        self._classes[name] = cls
        return cls

    def get(self, name: str) -> EventSource:
        """The configured instance of a source.

        Raises:
            InvalidEventError: no such source is installed (status 404).
            PluginLoadError: the source is disabled, failed to import or its config is invalid;
                the failure is kept in ``errors`` and raised again on every later call.
        """
        if name in self._instances:
            return self._instances[name]
        if not self.enabled(name):
            raise PluginLoadError(name, "disabled (plugins.yaml or KHOOK_DISABLE_SOURCES)")
        if name in self.errors:
            raise self.errors[name]
        cls = self.source_class(name)
        entry = self.plugins.entries.get(name)
        raw = self.plugins.raw.get(name)
        config: BaseModel | None = None
        model = getattr(cls, "config_model", None)
        if model is not None:
            try:
                config = model.model_validate(entry.config if entry else {})
            except ValidationError as exc:
                # One line for all the errors, in file order, at the line of the first one.
                errors = sorted(
                    (locate(raw, loc) or 0, dotted(loc), e["msg"])
                    for e in exc.errors()
                    for loc in [("config", *field_loc(e["loc"]))]
                )
                reason = "; ".join(f"{where}: {msg}" for _, where, msg in errors)
                raise self._fail(name, reason, line=errors[0][0] or None) from exc
        elif entry and entry.config:
            reason = "config: this source takes no config"
            raise self._fail(name, reason, line=line_of(raw, "config"))
        try:
            instance: EventSource = cls(config, self.context)
        except Exception as exc:  # a plugin's own bug: fail its requests, not the process
            raise self._fail(name, f"cannot create the source: {_one_line(exc)}") from exc
        self._instances[name] = instance
        return instance

    def _fail(self, name: str, reason: str, *, line: int | None = None) -> PluginLoadError:
        """Record (and return, to raise) the failure of ``name``; it is reported by name."""
        listed = name in self.plugins.entries
        if listed and line is None:
            line = self.plugins.lines.get(name)
        error = PluginLoadError(name, reason, file=self.plugins.file if listed else None, line=line)
        self.errors[name] = error
        return error

    def load_all(self) -> dict[str, EventSource]:
        """Every enabled source; failures are kept in ``errors`` for the caller, never raised."""
        loaded: dict[str, EventSource] = {}
        for name in self.names():
            try:
                loaded[name] = self.get(name)
            except PluginLoadError:
                continue
        return loaded


def _origin(point: EntryPoint) -> str:
    """`` (from DIST VERSION)`` for an entry point of a known distribution."""
    dist = getattr(point, "dist", None)
    if dist is None:
        return ""
    return f" (from {dist.name} {dist.version})"


def _one_line(exc: BaseException) -> str:
    """An exception as ``Type: message`` on one line (some messages span several)."""
    text = "; ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
