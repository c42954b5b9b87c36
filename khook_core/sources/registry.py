"""Discovering source plugins through the ``khook.sources`` entry-point group.

Built-in sources register in the same group as third-party ones, so there is one discovery path.
Plugins load lazily by name: a function needs only its own source, and one broken plugin never
stops the others (its ``PluginLoadError`` is kept and reported by name).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from khook_core.configmodel import validate
from khook_core.errors import ConfigError, InvalidEventError, PluginLoadError, Problem
from khook_core.sources.base import EventSource, SourceContext
from khook_core.yamlfile import line_of, load_documents

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP: Final = "khook.sources"


class PluginEntry(BaseModel):
    """One ``plugins:`` item of plugins.yaml (khook's plugin-design shape)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    enabled: bool = True
    path: str | None = None
    """Go shared objects in khook; meaningless in Python and reported as ignored."""
    config: dict[str, Any] = Field(default_factory=dict)


class PluginsFile(BaseModel):
    """The whole plugins.yaml; ``settings`` (khook's global plugin settings) is ignored."""

    model_config = ConfigDict(extra="forbid")

    plugins: list[PluginEntry] = Field(default_factory=list)
    settings: dict[str, Any] = Field(default_factory=dict)


@dataclass
class PluginSettings:
    """What plugins.yaml says: per source, enabled and raw config (with the line it sits on)."""

    entries: dict[str, PluginEntry] = field(default_factory=dict)
    lines: dict[str, int | None] = field(default_factory=dict)
    file: str = "plugins.yaml"
    notes: list[Problem] = field(default_factory=list)  # warnings, not errors

    @classmethod
    def load(cls, path: Path) -> PluginSettings:
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
        self._points: dict[str, EntryPoint] = {
            ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)
        }
        self._classes: dict[str, Any] = dict(extra or {})
        self._instances: dict[str, EventSource] = {}
        self.errors: dict[str, PluginLoadError] = {}

    def names(self) -> list[str]:
        """Installed, not disabled sources."""
        names = set(self._points) | set(self._classes)
        return sorted(n for n in names if self._enabled(n))

    def _enabled(self, name: str) -> bool:
        if "all" in self.disabled or name in self.disabled:
            return False
        entry = self.plugins.entries.get(name)
        return entry is None or entry.enabled

    def source_class(self, name: str) -> Any:
        """Import a source's class (without constructing it)."""
        if name in self._classes:
            return self._classes[name]
        if name in self.errors:
            raise self.errors[name]
        point = self._points.get(name)
        if point is None:
            raise InvalidEventError(
                f"unknown source {name!r} (installed: {', '.join(self.names())})",
                field="source",
                status=404,
            )
        try:
            cls = point.load()
            for attr in ("name", "version", "event_types", "normalize"):
                if not hasattr(cls, attr):
                    raise TypeError(f"missing attribute {attr!r} required by EventSource")
        except Exception as exc:
            error = PluginLoadError(name, f"cannot load {point.value}: {exc}")
            self.errors[name] = error
            raise error from exc
        self._classes[name] = cls
        return cls

    def get(self, name: str) -> EventSource:
        """The configured instance of a source.

        Raises:
            InvalidEventError: no such source is installed (status 404).
            PluginLoadError: the source is disabled, failed to import or its config is invalid.
        """
        if name in self._instances:
            return self._instances[name]
        if not self._enabled(name):
            raise PluginLoadError(name, "disabled (plugins.yaml or KHOOK_DISABLE_SOURCES)")
        cls = self.source_class(name)
        entry = self.plugins.entries.get(name)
        config: BaseModel | None = None
        model = getattr(cls, "config_model", None)
        try:
            if model is not None:
                config = model.model_validate(entry.config if entry else {})
            elif entry and entry.config:
                raise ValueError("this source takes no config")
            instance: EventSource = cls(config, self.context)
        except (ValidationError, ValueError, TypeError) as exc:
            where = f"{self.plugins.file}:{self.plugins.lines.get(name)}" if entry else "defaults"
            error = PluginLoadError(name, f"invalid config ({where}): {exc}")
            self.errors[name] = error
            raise error from exc
        self._instances[name] = instance
        return instance

    def load_all(self) -> dict[str, EventSource]:
        """Every enabled source; failures are kept in ``errors`` and logged, never raised."""
        loaded: dict[str, EventSource] = {}
        for name in self.names():
            try:
                loaded[name] = self.get(name)
            except PluginLoadError as exc:
                logger.error("%s", exc)
        return loaded

    def event_types(self) -> set[str]:
        """Event types declared by every loadable source."""
        types: set[str] = set()
        for name in self.names():
            try:
                types.update(self.source_class(name).event_types)
            except (PluginLoadError, InvalidEventError):
                continue
        return types
