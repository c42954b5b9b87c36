"""Every function's live configuration: the snapshot's version read once an interval, the whole
configuration swapped at once when it changes.

``current_runtime(source)`` is what the transports call instead of ``runtime.get_runtime()``.
It answers from memory until ``settings.config_refresh`` seconds have passed; then one request
(the others carry on with the current runtime, never waiting) reads the version, and on a new
one reads the snapshot, loads it with the one loader and checks the function's own source. A
runtime is immutable once handed out: a swap builds a new one (same store and dispatcher, new
``Config``), so an event in flight finishes on the configuration it started with.

- Store unreachable: the last good configuration stays, and the log says so (each interval).
- Snapshot refused (a field this version does not know, a missing plugin): the reason is
  logged once, the previous configuration stays, the next version is tried when it comes.
- Store empty: the function publishes the files it was deployed with as version 1 (only if
  still empty: of several instances one wins), so a first deploy works with no push.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from time import monotonic
from typing import Final

from khook_core import runtime
from khook_core.errors import ConfigError, PluginLoadError, TransientError
from khook_core.liveconfig import snapshot
from khook_core.state import open_config_store
from khook_core.state.base import ConfigStore

logger = logging.getLogger(__name__)

BOOTSTRAP_ORIGIN: Final = "files"


class Reloader:
    """One process's live configuration on top of the runtime it started with.

    Args:
        base: the runtime ``get_runtime()`` built from the deployed files.
        source: the function's own source (None for the sweep): a snapshot in which it cannot
            be served is refused.
        interval: seconds between two version reads.
    """

    def __init__(
        self,
        base: runtime.Runtime,
        *,
        source: str | None,
        interval: float,
        store: ConfigStore | None = None,
    ) -> None:
        self.base = base
        self.source = source
        self.interval = interval
        self._store = store
        self._runtime = base
        self._version = 0  # of the snapshot in use; 0: the deployed files
        self._refused = 0
        self._next_check = 0.0  # the first request checks: a new instance starts current
        self._checking = threading.Lock()
        files = snapshot.files_of(base.settings.config_dir)
        self._files = files
        self._digest = snapshot.digest_of(files)
        if not base.config.version:
            base.config.version = f"files:{self._digest[:12]}"

    @property
    def version(self) -> int:
        """The snapshot version in use (0: still the deployed files)."""
        return self._version

    def current(self) -> runtime.Runtime:
        """The runtime to handle this request with; reads the store at most once an interval."""
        now = monotonic()
        if now < self._next_check or not self._checking.acquire(blocking=False):
            return self._runtime
        try:
            self._next_check = now + self.interval
            self._check()
        finally:
            self._checking.release()
        return self._runtime

    def _check(self) -> None:
        try:
            store = self._open()
            version = store.config_version()
            if version == 0:
                self._bootstrap(store)
                return
            if version in (self._version, self._refused):
                return
            published = store.read_config()
        except (TransientError, ConfigError) as exc:
            logger.warning(
                "configuration store unreachable; keeping configuration %s: %s",
                self._runtime.config.version,
                exc,
            )
            return
        if published is None or published.version <= self._version:
            return  # replaced by an older one between the two reads? keep ours
        if published.digest == self._digest:
            # The deployed files themselves (another instance bootstrapped them, or a push of
            # the same files): loaded at start already, so a cold start does not load them twice.
            self._runtime = self.base
            self._version = published.version
            self.base.config.version = str(published.version)
            return
        self._load(published.version, published.files, published.origin)

    def _open(self) -> ConfigStore:
        if self._store is None:
            settings = self.base.settings
            self._store = open_config_store(settings.state, project=settings.firestore.project_id())
        return self._store

    def _bootstrap(self, store: ConfigStore) -> None:
        """Publish the deployed files as the first snapshot, unless someone else just did."""
        published = store.publish_config(
            files=self._files,
            origin=BOOTSTRAP_ORIGIN,
            hooks=len(self.base.config.hooks.hooks()),
            digest=self._digest,
            now=self.base.clock(),
            expect=0,
        )
        if published is not None:
            # The files published are the deployed ones: back to the configuration they loaded
            # (a store emptied after a reload must not leave a newer one labelled as these).
            self._runtime = self.base
            self._version = published
            self.base.config.version = str(published)
            logger.info(
                "configuration bootstrapped from the deployed files as version %d", published
            )
        else:
            self._next_check = 0.0  # another instance published first: read it now

    def _load(self, version: int, files: dict[str, str], origin: str) -> None:
        settings = self.base.settings
        label = f"snapshot v{version}"
        try:
            config = snapshot.load_files(
                files,
                label=label,
                version=str(version),
                clock=self.base.clock,
                disabled_sources=runtime.disabled_sources(settings),
            )
            if self.source is not None:
                runtime.require_source(config, self.source, settings)
        except (ConfigError, PluginLoadError) as exc:
            self._refused = version
            self.base.telemetry.reload("refused")
            logger.error(
                "configuration version %d (%s) refused; keeping configuration %s:\n%s",
                version,
                origin,
                self._runtime.config.version,
                exc,
            )
            return
        runtime.log_source_errors(config)
        before = len(self._runtime.config.hooks.hooks())
        self._runtime = dataclasses.replace(self.base, config=config)
        self._version = version
        self.base.telemetry.reload("loaded")
        logger.info(
            "configuration version %d (%s) loaded: %d hooks (was %d)",
            version,
            origin,
            len(config.hooks.hooks()),
            before,
        )

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


_LOCK = threading.Lock()
_reloader: Reloader | None = None


def current_runtime(source: str | None) -> runtime.Runtime:
    """The process's runtime with the live configuration (see the module docstring).

    Without a shared store (``memory``) or with ``config_refresh`` 0 it is ``get_runtime()``.
    """
    global _reloader
    base = runtime.get_runtime()
    reloader = _reloader
    if reloader is not None and reloader.base is base:  # the per-event path: no more than this
        return reloader.current()
    settings = base.settings
    if not settings.config_refresh or settings.state == "memory":
        return base
    if reloader is None or reloader.base is not base:
        with _LOCK:
            reloader = _reloader
            if reloader is None or reloader.base is not base:
                if reloader is not None:
                    reloader.close()
                reloader = Reloader(base, source=source, interval=settings.config_refresh)
                _reloader = reloader
    return reloader.current()
