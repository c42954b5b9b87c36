"""The loaded configuration and live clients one process works with.

``Runtime.build`` loads ``config/`` (mapping table, plugins, hooks), opens the state store and
creates the dispatcher (the sending one builds its HTTP client on its first dispatch), once.
Functions call ``start_function`` at import, so a configuration error or a missing source fails
the cold start instead of every request, and ``get_runtime()``,
which opens the clients on the first event and caches the runtime for the life of the instance.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from khook_core.catalog import EventCatalog
from khook_core.dispatch import Dispatcher, DispatchRequest, DispatchResult, build_dispatcher
from khook_core.errors import ConfigError, InvalidEventError, PluginLoadError, Problem
from khook_core.event import utcnow
from khook_core.hooks import HookSet, hook_files, load_hooks
from khook_core.mapping import MappingTable
from khook_core.redaction.redactor import Redactor, build_redactor
from khook_core.settings import Settings, TrackingSettings
from khook_core.silencing.gate import SilenceGate
from khook_core.silencing.windows import Windows, compile_windows
from khook_core.sources.base import SourceContext
from khook_core.sources.registry import PluginSettings, SourceRegistry
from khook_core.state import (
    DEFAULT_DEDUP_WINDOW,
    ApprovalStore,
    IncidentStore,
    StateStore,
    TaskStore,
    open_incident_store,
    open_silence_store,
    open_store,
)
from khook_core.state.silence_memory import MemorySilenceStore
from khook_core.storm.config import Budgets
from khook_core.telemetry import NOOP, Telemetry
from khook_core.telemetry import build as build_telemetry

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
    windows: Windows = field(default_factory=Windows)
    """The maintenance windows of ``budgets.yaml``, compiled."""
    version: str = ""
    """Which configuration this is, for the audit trail: a snapshot's version (``3``), or
    ``files:<digest>`` before the store holds one (see ``khook_core.liveconfig``)."""


T = TypeVar("T")


def _collect(problems: list[Problem], load: Callable[[], T], default: T) -> T:
    """``load()``, or ``default`` with its problems added: every file is checked, so one
    invalid file does not hide the problems of the next."""
    try:
        return load()
    except ConfigError as exc:
        problems.extend(exc.problems)
        return default


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
    plugins = _collect(
        problems, lambda: PluginSettings.load(config_dir / PLUGINS_FILE), PluginSettings()
    )
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
        # Without a mapping table every eventType would look unknown: those checks wait until
        # the mapping file loads.
        catalog = (
            EventCatalog.from_pairs(mapping.entries, registry.installed_names())
            if mapping_loaded
            else None
        )
        hooks = load_hooks(hook_files(config_dir / HOOKS_DIR), catalog)
    except ConfigError as exc:
        problems.extend(exc.problems)
    budgets = _collect(problems, lambda: Budgets.load(config_dir / BUDGETS_FILE), Budgets())
    windows = _collect(
        problems, lambda: compile_windows(budgets, config_dir / BUDGETS_FILE), Windows()
    )
    if problems:
        raise ConfigError(problems)
    return Config(
        mapping, plugins, registry, hooks, budgets, notes=list(plugins.notes), windows=windows
    )


def disabled_sources(settings: Settings) -> frozenset[str]:
    """The source names ``KHOOK_DISABLE_SOURCES`` lists (``all`` disables every source)."""
    return frozenset(s.strip() for s in settings.disable_sources.split(",") if s.strip())


class Clock:
    """The wall clock, or a fixed instant (``khook replay --now``)."""

    def __init__(self, fixed: datetime | None = None) -> None:
        self.fixed = fixed

    def __call__(self) -> datetime:
        return self.fixed if self.fixed is not None else utcnow()


def _dispatcher(settings: Settings) -> Dispatcher:
    """``KHOOK_DISPATCH``'s dispatcher: dry-run at once (it records, nothing to import), the
    sending one on its first dispatch."""
    if settings.dispatch == "dry-run":
        return build_dispatcher(settings)
    return LazyDispatcher(lambda: build_dispatcher(settings))


class LazyDispatcher:
    """The configured dispatcher, built on the first dispatch.

    Building it imports the HTTP client and creates its connection pool: a process whose first
    request dispatches nothing (the sweep's tick with nothing held back, a duplicate, an event
    no hook matches) does not pay for that. ``KHOOK_DISPATCH=dry-run`` needs no wrapper.
    """

    def __init__(self, build: Callable[[], Dispatcher]) -> None:
        self._build = build
        self._dispatcher: Dispatcher | None = None
        self._lock = threading.Lock()

    def get(self) -> Dispatcher:
        """The dispatcher, built now if this is its first use (thread-safe)."""
        if self._dispatcher is None:
            with self._lock:
                if self._dispatcher is None:
                    self._dispatcher = self._build()
        return self._dispatcher

    def dispatch(self, request: DispatchRequest) -> DispatchResult:
        return self.get().dispatch(request)

    def close(self) -> None:
        with self._lock:
            if self._dispatcher is not None:
                self._dispatcher.close()
                self._dispatcher = None


class TaskHandle:
    """The task store, opened on first use: by the dispatch that starts a task or the sweep
    that follows them (a function that never dispatches to an agent never opens it)."""

    def __init__(self, store: TaskStore | None = None) -> None:
        self._store = store
        self._lock = threading.Lock()  # functions serve requests from several threads

    def get(self, settings: Settings) -> TaskStore:
        with self._lock:
            if self._store is None:
                from khook_core.state import open_task_store

                self._store = open_task_store(
                    settings.state, project=settings.firestore.project_id()
                )
            return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


class ApprovalHandle:
    """The approval store, opened on first use (by the tracker that sees a task pause, or the
    sweep that rejects the approvals past their deadline)."""

    def __init__(self, store: ApprovalStore | None = None) -> None:
        self._store = store
        self._lock = threading.Lock()

    def get(self, settings: Settings) -> ApprovalStore:
        with self._lock:
            if self._store is None:
                from khook_core.state import open_approval_store

                self._store = open_approval_store(
                    settings.state, project=settings.firestore.project_id()
                )
            return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


@dataclass
class Runtime:
    """What a process's events share: settings, configuration, store, dispatcher and clock.

    (A docstring of its own also spares ``dataclass`` rendering the signature into one, an
    ``inspect.signature`` at every cold start.)
    """

    settings: Settings
    config: Config
    store: StateStore
    dispatcher: Dispatcher
    clock: Callable[[], datetime]
    default_window: timedelta = DEFAULT_DEDUP_WINDOW
    redactor: Redactor = field(default_factory=lambda: build_redactor(None, {}))
    tasks: TaskHandle = field(default_factory=lambda: TaskHandle())
    """Tracked agent tasks (``task_store()``), shared by the copies the live configuration
    makes of this runtime."""
    telemetry: Telemetry = NOOP
    """Spans and metrics (``khook_core.telemetry``); the no-op unless ``KHOOK_TELEMETRY`` is on."""
    silences: SilenceGate = field(
        default_factory=lambda: SilenceGate(MemorySilenceStore, interval=0)
    )
    """The silences in force, read from the store once per ``config_refresh``."""
    approvals: ApprovalHandle = field(default_factory=lambda: ApprovalHandle())
    """Approvals of paused agent tasks (``approval_store()``), shared like ``tasks``."""
    incident_store: IncidentStore | None = None

    @functools.cached_property
    def incidents(self) -> IncidentStore:
        """The incident store (``correlate:``), opened on the state store's URL when first
        needed, so a process without correlating hooks never opens it."""
        if self.incident_store is None:
            self.incident_store = open_incident_store(
                self.settings.state, project=self.settings.firestore.project_id()
            )
        return self.incident_store

    @functools.cached_property
    def stale_after(self) -> timedelta:
        """How long a claim's own delivery may still be working on it: the invocation budget
        (see ``StateStore.claim_firing``); computed once, it is read on every claim."""
        return timedelta(seconds=self.settings.invocation_budget)

    @functools.cached_property
    def tracking(self) -> TrackingSettings:
        """``KHOOK_TRACK_*`` (``khook_core.tracking``), looked up once: every dispatch reads it.

        Raises:
            ConfigError: an invalid variable of the group, named.
        """
        return self.settings.group(TrackingSettings)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        clock: Callable[[], datetime] | None = None,
        store: StateStore | None = None,
        dispatcher: Dispatcher | None = None,
        config: Config | None = None,
        telemetry: Telemetry = NOOP,
    ) -> Runtime:
        """Load the configuration (unless given, already loaded) and open the clients."""
        clock = clock or Clock()
        if config is None:
            config = load_config(
                settings.config_dir, clock=clock, disabled_sources=disabled_sources(settings)
            )
            log_source_errors(config)
        redactor = build_redactor(
            settings.redaction_key,
            config.plugins.redact_rules(),
            deployed=bool(settings.cloud_run_service),
        )
        redactor.on_masked = telemetry.masked
        return cls(
            settings=settings,
            config=config,
            store=store or open_store(settings.state, project=settings.firestore.project_id()),
            dispatcher=dispatcher or _dispatcher(settings),
            clock=clock,
            default_window=timedelta(seconds=settings.dedup_window)
            if settings.dedup_window
            else DEFAULT_DEDUP_WINDOW,
            redactor=redactor,
            telemetry=telemetry,
            silences=SilenceGate(
                lambda: open_silence_store(settings.state, project=settings.firestore.project_id()),
                interval=settings.config_refresh,
            ),
        )

    def task_store(self) -> TaskStore:
        """The tracked tasks' handle on the configured store (memory: one per runtime,
        shared by its pipeline and its sweep)."""
        return self.tasks.get(self.settings)

    def approval_store(self) -> ApprovalStore:
        """The approvals' handle on the configured store (memory: one per runtime)."""
        return self.approvals.get(self.settings)

    def close(self) -> None:
        self.store.close()
        self.dispatcher.close()
        self.tasks.close()
        self.approvals.close()
        self.telemetry.close()
        self.silences.close()
        if self.incident_store is not None:
            self.incident_store.close()


def log_source_errors(config: Config) -> None:
    """Log once, at start, each source that failed to load: only its own requests fail."""
    for error in config.sources.errors.values():
        logger.error("%s (requests for this source fail; the other sources work)", error)


def require_source(config: Config, source: str, settings: Settings) -> None:
    """Check that a function's own source is installed, enabled and loads.

    Raises:
        PluginLoadError: naming the source and what to do.
    """
    registry = config.sources
    names = disabled_sources(settings)
    if "all" in names or source in names:
        raise PluginLoadError(
            source,
            f"disabled by KHOOK_DISABLE_SOURCES={settings.disable_sources!r}, but this function "
            f"serves it; take {source!r} (and 'all') out of that list",
        )
    entry = config.plugins.entries.get(source)
    if entry is not None and not entry.enabled:
        raise PluginLoadError(
            source,
            "enabled: false, but this function serves it; enable it, or do not deploy "
            "this function",
            file=config.plugins.file,
            line=config.plugins.lines.get(source),
        )
    try:
        registry.get(source)
    except InvalidEventError as exc:  # not installed and not listed in plugins.yaml
        installed = ", ".join(sorted(registry.installed_names())) or "none"
        raise PluginLoadError(
            source,
            f"not installed (installed: {installed}); install the distribution whose "
            f"'khook.sources' entry point is named {source!r}",
        ) from exc


_RUNTIME_LOCK = threading.Lock()
_runtime: Runtime | None = None
_started: tuple[Settings, Config, Clock, Telemetry] | None = None


def start_function(settings: Settings, source: str | None) -> None:
    """Load and check everything a function needs before its first request (its cold start).

    A configuration error, or a function whose own source is missing, disabled or broken,
    fails the import of ``main.py``, so the instance never starts (and the deployment fails)
    instead of acknowledging and dropping every message. The clients are opened later by
    ``get_runtime()``, on the first request.

    Args:
        settings: read once by the function's entry point.
        source: the source the function serves; None for the sweep.

    Raises:
        ConfigError: every problem of the configuration directory.
        PluginLoadError: ``source`` cannot be served (not installed, disabled or broken).
    """
    global _runtime, _started
    clock = Clock()
    try:
        config = load_config(
            settings.config_dir, clock=clock, disabled_sources=disabled_sources(settings)
        )
        if source is not None:
            require_source(config, source, settings)
    except (ConfigError, PluginLoadError) as exc:
        logger.critical("function %s cannot start:\n%s", source or "sweep", exc)
        raise
    log_source_errors(config)
    tracing = build_telemetry(settings.telemetry, function=source or "sweep")
    with _RUNTIME_LOCK:
        _runtime = None
        _started = (settings, config, clock, tracing)


def get_runtime() -> Runtime:
    """The process-wide runtime, built once (from what ``start_function`` loaded, if it ran).

    functions-framework serves requests from several threads; the lock makes the first
    concurrent requests share one runtime instead of each building its own.
    """
    global _runtime
    with _RUNTIME_LOCK:
        if _runtime is None:
            if _started is not None:
                settings, config, clock, tracing = _started
                _runtime = Runtime.build(settings, clock=clock, config=config, telemetry=tracing)
            else:
                _runtime = Runtime.build(Settings.from_env())
        return _runtime


def reset_runtime() -> None:
    """Forget the process-wide runtime (tests, or after the environment changed)."""
    global _runtime, _started
    with _RUNTIME_LOCK:
        _runtime = None
        _started = None
