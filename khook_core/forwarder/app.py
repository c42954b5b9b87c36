"""The forwarder assembled: watch threads → filter → bounded queue → publisher, plus probes.

``Forwarder`` is what the CLI runs and what the integration tests and benchmarks start in-process
(with a test API server URL, an emulator and port 0). It loads the same ``event-mappings.yaml``
and ``plugins.yaml`` as the functions, so the pre-filter and the functions agree on what can fire.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from khook_core.errors import ConfigError, Problem
from khook_core.event import utcnow
from khook_core.forwarder.backoff import Backoff
from khook_core.forwarder.config import ForwarderSettings
from khook_core.forwarder.filtering import EventFilter, attach_workloads
from khook_core.forwarder.metrics import ForwarderMetrics
from khook_core.forwarder.owners import OwnerResolver
from khook_core.forwarder.probes import ProbeServer
from khook_core.forwarder.publishing import PublishClient, Publisher, pubsub_client
from khook_core.forwarder.watching import (
    EventWatcher,
    WatchState,
    WatchTimings,
    run_watch_loop,
)
from khook_core.mapping import MappingTable
from khook_core.sources.base import SourceContext
from khook_core.sources.kubernetes import KubernetesConfig, KubernetesSource
from khook_core.sources.registry import PluginSettings
from khook_core.telemetry import NOOP, Telemetry

if TYPE_CHECKING:
    from khook_core.forwarder.hook_sync import HookSync
    from khook_core.forwarder.mapping_follow import MappingFollower

logger = logging.getLogger(__name__)

MAPPINGS_FILE = "event-mappings.yaml"
PLUGINS_FILE = "plugins.yaml"
JOIN_SECONDS = 5.0
"""How long stopping waits for a watch thread; stop() shuts its socket, so it is quick."""


def load_source(
    config_dir: Path, clock: Callable[[], datetime], *, need_mapping: bool
) -> tuple[KubernetesSource, MappingTable]:
    """The kubernetes source configured as the functions configure it, and the mapping table.

    Raises:
        ConfigError: a file is invalid, or the mapping file is missing while it is needed.
    """
    mapping_path = config_dir / MAPPINGS_FILE
    if mapping_path.exists() or need_mapping:
        if not mapping_path.exists():
            raise ConfigError(
                [
                    Problem(
                        str(mapping_path),
                        None,
                        "missing: the pre-filter needs the mapping table; mount the functions' "
                        "config directory there, set KHOOK_CONFIG_DIR, or run with --forward-all",
                    )
                ]
            )
        mapping = MappingTable.load(mapping_path)
    else:
        mapping = MappingTable()
    plugins = PluginSettings.load(config_dir / PLUGINS_FILE)
    entry = plugins.entries.get(KubernetesSource.name)
    source_config = KubernetesConfig.model_validate(entry.config if entry else {})
    return KubernetesSource(source_config, SourceContext(clock=clock, mapping=mapping)), mapping


class Forwarder:
    """Runs until ``stop``; see the module docstring.

    Args:
        settings: validated settings.
        publish_client: substitute Pub/Sub client (tests); default ``pubsub_client(settings)``.
        clock: the wall clock (tests fix it).
    """

    def __init__(
        self,
        settings: ForwarderSettings,
        *,
        publish_client: PublishClient | None = None,
        clock: Callable[[], datetime] = utcnow,
        telemetry: Telemetry = NOOP,
    ) -> None:
        from khook_core.forwarder import kube

        self.settings = settings
        self.metrics = ForwarderMetrics()
        source, mapping = load_source(
            settings.config_dir, clock, need_mapping=not settings.forward_all
        )
        max_age = (
            timedelta(seconds=settings.max_age_seconds)
            if settings.max_age_seconds
            else source.freshness
        )
        self.api_client = kube.api_client(settings)
        self.owners = (
            OwnerResolver(
                kube.owner_fetch(self.api_client),
                max_entries=settings.owner_cache_size,
                ttl_seconds=settings.owner_cache_seconds,
                lookups_per_second=settings.owner_lookups_per_second,
            )
            if settings.resolve_owners
            else None
        )
        self.publisher = Publisher(
            client=publish_client or pubsub_client(settings),
            topic=settings.topic_path(),
            metrics=self.metrics,
            queue_size=settings.queue_size,
            batch_size=settings.batch_size,
            timeout=settings.publish_timeout_seconds,
            backoff=self._backoff(),
            telemetry=telemetry,
            linger=settings.batch_latency_seconds,
            in_flight=settings.publish_in_flight,
            prepare=None if self.owners is None else partial(attach_workloads, self.owners),
        )
        self.event_filter = event_filter = EventFilter(
            source=source,
            mapping=mapping,
            api=settings.api,
            cluster=settings.cluster,
            forward_all=settings.forward_all,
            clock=clock,
            resolve_owners=self.owners is not None,
        )
        timings = WatchTimings(
            lookback=timedelta(seconds=settings.lookback_seconds),
            max_age=max_age,
            relist_overlap=timedelta(seconds=settings.relist_overlap_seconds),
            watch_timeout=settings.watch_timeout_seconds,
            page_size=settings.list_page_size,
            empty_limit=settings.empty_watch_limit,
            empty_seconds=settings.empty_watch_seconds,
            field_selector=settings.field_selector,
            dead_after=settings.dead_after_seconds,
        )
        self.watchers = [
            EventWatcher(
                endpoint=endpoint,
                timings=timings,
                event_filter=event_filter,
                sink=self.publisher.submit,
                metrics=self.metrics,
                clock=clock,
            )
            for endpoint in kube.endpoints(self.api_client, settings)
        ]
        self.states = [WatchState() for _ in self.watchers]
        self.probes = ProbeServer(
            settings.host,
            settings.port,
            alive=self.alive,
            ready=self.ready,
            metrics=self.metrics,
            not_ready_because=self.not_ready_because,
        )
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.hook_sync = self._hook_sync(clock)  # None unless hooks_state is set
        self.mapping_follower = self._mapping_follower(clock)  # likewise

    def _hook_sync(self, clock: Callable[[], datetime]) -> HookSync | None:
        if not self.settings.hooks_state:
            return None
        from khook_core.forwarder.hook_sync import HookSync
        from khook_core.forwarder.kube import kubernetes_api_client

        # The Hooks' typed calls go through the official client, loaded only in this mode.
        self._hooks_api = kubernetes_api_client(self.settings)
        return HookSync(self._hooks_api, self.settings, clock=clock)

    def _mapping_follower(self, clock: Callable[[], datetime]) -> MappingFollower | None:
        if not self.settings.hooks_state:
            return None
        from khook_core.forwarder.mapping_follow import MappingFollower
        from khook_core.state import open_config_store

        store = open_config_store(self.settings.hooks_state, project=self.settings.project or None)
        return MappingFollower(
            store,
            self.event_filter,
            load=lambda directory: load_source(directory, clock, need_mapping=True),
            interval=self.settings.config_refresh_seconds,
        )

    def _backoff(self) -> Backoff:
        return Backoff(self.settings.backoff_initial_seconds, self.settings.backoff_max_seconds)

    def start(self) -> None:
        """Start publishing, probes and one watch thread per endpoint; returns at once."""
        self.publisher.start()
        self.probes.start()
        for watcher, state in zip(self.watchers, self.states, strict=True):
            thread = threading.Thread(
                target=run_watch_loop,
                name=f"khook-watch-{watcher.endpoint.namespace or 'all'}",
                kwargs={
                    "watcher": watcher,
                    "state": state,
                    "stop": self._stop,
                    "backoff": self._backoff(),
                    "metrics": self.metrics,
                },
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        if self.hook_sync is not None:
            self._threads += self.hook_sync.start(self._stop, self._backoff)
        if self.mapping_follower is not None:
            follow = threading.Thread(
                target=self.mapping_follower.run,
                name="khook-mapping",
                args=(self._stop, self._backoff()),
                daemon=True,
            )
            follow.start()
            self._threads.append(follow)
        logger.info(
            "forwarding %s to %s (pre-filter %s); probes on port %d",
            ", ".join(w.endpoint.describe() for w in self.watchers),
            self.publisher.topic,
            "off" if self.settings.forward_all else "on",
            self.probes.port,
        )

    def ready(self) -> bool:
        """Every endpoint has completed its first list."""
        return all(state.listed for state in self.states)

    def not_ready_because(self) -> str:
        """The API server's reason a first list has not completed yet (empty when none)."""
        return "; ".join(
            f"{watcher.endpoint.describe()}: {state.problem}"
            for watcher, state in zip(self.watchers, self.states, strict=True)
            if not state.listed and state.problem
        )

    def alive(self) -> bool:
        """Every endpoint made contact with the API server within ``dead_after_seconds``.

        An open watch does not count by itself: a stuck stream is open and silent. A quiet but
        healthy one makes contact anyway, because its calls are sized to end well inside the
        limit (``WatchTimings.call_timeouts``).
        """
        now = time.monotonic()
        limit = self.settings.dead_after_seconds
        return all(now - s.last_alive < limit for s in self.states)

    def stop(self, flush_seconds: float | None = None) -> bool:
        """Stop watching, publish what is queued within the flush deadline, stop the probes.

        Returns:
            True when nothing queued was lost.
        """
        self._stop.set()
        for watcher in self.watchers:
            watcher.stop()
        if self.hook_sync is not None:
            self.hook_sync.stop()
        self.publisher.queue.release()  # a watch thread waiting for room must not hold us up
        for thread in self._threads:
            thread.join(JOIN_SECONDS)
        if self.mapping_follower is not None:
            self.mapping_follower.store.close()
        flushed = self.publisher.stop(
            self.settings.flush_seconds if flush_seconds is None else flush_seconds
        )
        self.probes.stop()
        self.api_client.close()
        if self.hook_sync is not None:
            self._hooks_api.close()  # type: ignore[no-untyped-call]
        logger.info("forwarder stopped (%s)", "queue flushed" if flushed else "messages lost")
        return flushed
