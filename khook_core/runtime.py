"""The loaded configuration and live clients one process works with.

``Runtime.build`` loads ``config/`` (mapping table, plugins, hooks), opens the state store and
creates the dispatcher, once. Functions call ``get_runtime()``, which caches it for the life of
the instance, so only the first event pays for loading.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from khook_core.budget import Budgets
from khook_core.dispatch import Dispatcher, build_dispatcher
from khook_core.errors import ConfigError, PluginLoadError, Problem
from khook_core.event import utcnow
from khook_core.hooks import HookSet, hook_files, load_hooks
from khook_core.mapping import MappingTable
from khook_core.settings import Settings
from khook_core.sources.base import SourceContext
from khook_core.sources.registry import PluginSettings, SourceRegistry
from khook_core.state import DEFAULT_DEDUP_WINDOW, StateStore, open_store

MAPPINGS_FILE = "event-mappings.yaml"
BUDGETS_FILE = "budgets.yaml"
PLUGINS_FILE = "plugins.yaml"
HOOKS_DIR = "hooks"

logger = logging.getLogger(__name__)


@dataclass
class Config:
    """Everything under the config directory, validated."""

    mapping: MappingTable
    plugins: PluginSettings
    sources: SourceRegistry
    hooks: HookSet
    budgets: Budgets = field(default_factory=Budgets)
    notes: list[Problem] = field(default_factory=list)


def load_config(
    config_dir: Path,
    *,
    clock: Callable[[], datetime] = utcnow,
    disabled_sources: frozenset[str] = frozenset(),
    check_sources: bool = False,
) -> Config:
    """Load and cross-check mappings, plugins and hooks.

    The sources plugins.yaml lists (and enables) are loaded at once; one that fails is kept in
    ``config.sources.errors``, so only its own requests fail, and the others keep working.

    Args:
        check_sources: also load every other enabled source, and make each source that fails
            a problem (``khook validate``).

    Raises:
        ConfigError: with every problem found in every file (not only the first).
    """
    problems: list[Problem] = []
    mapping_path = config_dir / MAPPINGS_FILE
    mapping = MappingTable()
    mapping_loaded = False
    if not mapping_path.exists():
        problems.append(Problem(str(mapping_path), None, "missing mapping file"))
    else:
        try:
            mapping = MappingTable.load(mapping_path)
            mapping_loaded = True
        except ConfigError as exc:
            problems.extend(exc.problems)
    plugins = PluginSettings()
    try:
        plugins = PluginSettings.load(config_dir / PLUGINS_FILE)
    except ConfigError as exc:
        problems.extend(exc.problems)
    registry = SourceRegistry(
        SourceContext(clock=clock, mapping=mapping), plugins, disabled=disabled_sources
    )
    for name in plugins.entries:
        if registry.enabled(name):
            try:
                registry.get(name)
            except PluginLoadError:
                continue  # kept in registry.errors
    if check_sources:
        registry.load_all()
        problems.extend(error.problem(plugins.file) for error in registry.errors.values())
    hooks = HookSet()
    try:
        # Without a mapping table every eventType would look unknown: that check waits until
        # the mapping file loads.
        known = KnownEventTypes(mapping, registry) if mapping_loaded else None
        hooks = load_hooks(hook_files(config_dir / HOOKS_DIR), known)
    except ConfigError as exc:
        problems.extend(exc.problems)
    budgets = Budgets()
    try:
        budgets = Budgets.load(config_dir / BUDGETS_FILE)
    except ConfigError as exc:
        problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return Config(mapping, plugins, registry, hooks, budgets, notes=list(plugins.notes))


def disabled_sources(settings: Settings) -> frozenset[str]:
    """The source names ``KHOOK_DISABLE_SOURCES`` lists (``all`` disables every source)."""
    return frozenset(s.strip() for s in settings.disable_sources.split(",") if s.strip())


class KnownEventTypes(Collection[str]):
    """The event types hooks may name: the mapping table's, then the installed sources'.

    The sources' own lists are read only when a hook names a type the mapping table lacks:
    reading them imports every source, about 30 ms of every function's cold start.
    """

    def __init__(self, mapping: MappingTable, registry: SourceRegistry) -> None:
        self._mapped = mapping.event_types()
        self._registry = registry
        self._declared: set[str] | None = None

    def _all(self) -> set[str]:
        if self._declared is None:
            self._declared = self._registry.event_types()
        return self._mapped | self._declared

    def __contains__(self, item: object) -> bool:
        return item in self._mapped or item in self._all()

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


class Clock:
    """The wall clock, or a fixed instant (``khook replay --now``)."""

    def __init__(self, fixed: datetime | None = None) -> None:
        self.fixed = fixed

    def __call__(self) -> datetime:
        return self.fixed if self.fixed is not None else utcnow()


@dataclass
class Runtime:
    settings: Settings
    config: Config
    store: StateStore
    dispatcher: Dispatcher
    clock: Callable[[], datetime]
    default_window: timedelta = DEFAULT_DEDUP_WINDOW

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        clock: Callable[[], datetime] | None = None,
        store: StateStore | None = None,
        dispatcher: Dispatcher | None = None,
    ) -> Runtime:
        clock = clock or Clock()
        config = load_config(
            settings.config_dir, clock=clock, disabled_sources=disabled_sources(settings)
        )
        for error in config.sources.errors.values():
            logger.error("%s (requests for this source fail; the other sources work)", error)
        return cls(
            settings=settings,
            config=config,
            store=store or open_store(settings.state),
            dispatcher=dispatcher or build_dispatcher(settings.dispatch),
            clock=clock,
            default_window=timedelta(seconds=settings.dedup_window)
            if settings.dedup_window
            else DEFAULT_DEDUP_WINDOW,
        )

    def close(self) -> None:
        self.store.close()
        self.dispatcher.close()


_RUNTIME_LOCK = threading.Lock()
_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    """The process-wide runtime built from the environment, built once.

    functions-framework serves requests from several threads; the lock makes the first
    concurrent requests share one runtime instead of each building its own.
    """
    global _runtime
    with _RUNTIME_LOCK:
        if _runtime is None:
            _runtime = Runtime.build(Settings.from_env())
        return _runtime


def reset_runtime() -> None:
    """Forget the process-wide runtime (tests, or after the environment changed)."""
    global _runtime
    with _RUNTIME_LOCK:
        _runtime = None
