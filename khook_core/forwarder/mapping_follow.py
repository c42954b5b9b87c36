"""The pre-filter follows the live configuration: its mapping table and plugins come from the
snapshot the functions load, not only from the files the forwarder was deployed with.

With a state store (``hooks_state``) the forwarder reads the snapshot's version once per
``interval`` (one small read, as the functions do) and, when it changed, rebuilds the kubernetes
source and mapping table from the snapshot's ``event-mappings.yaml`` and ``plugins.yaml`` and
swaps them into the filter at once. A mapping row pushed for a Kubernetes event type that was
unmapped then reaches the cluster without a restart. A snapshot the forwarder cannot load is
refused with its problems logged, and the filter keeps what it had; an unreachable store is
logged and retried.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from khook_core.errors import KhookError, TransientError
from khook_core.forwarder.backoff import Backoff
from khook_core.forwarder.filtering import EventFilter
from khook_core.mapping import MappingTable
from khook_core.sources.kubernetes import KubernetesSource
from khook_core.state.base import ConfigStore

logger = logging.getLogger(__name__)

FILES = ("event-mappings.yaml", "plugins.yaml")
Loader = Callable[[Path], tuple[KubernetesSource, MappingTable]]
"""Builds the kubernetes source and mapping table from a directory holding ``FILES``
(``app.load_source``, the same as at start-up)."""


class MappingFollower:
    """Keeps ``event_filter``'s source and mapping equal to the live snapshot's."""

    def __init__(
        self,
        store: ConfigStore,
        event_filter: EventFilter,
        *,
        load: Loader,
        interval: float,
    ) -> None:
        self.store = store
        self.event_filter = event_filter
        self.load = load
        self.interval = interval
        self.version = 0
        self.refused = 0

    def check(self) -> None:
        """One look at the store; loads a newer snapshot's mapping (or refuses it).

        Raises:
            TransientError: the store could not be read.
        """
        version = self.store.config_version()
        if version in (0, self.version, self.refused):
            return
        snapshot = self.store.read_config()
        if snapshot is None:
            return
        with tempfile.TemporaryDirectory(prefix="khook-mapping-") as tmp:
            for name in FILES:
                if name in snapshot.files:
                    (Path(tmp) / name).write_text(snapshot.files[name], encoding="utf-8")
            try:
                source, mapping = self.load(Path(tmp))
            except (KhookError, ValueError) as exc:  # ValueError: pydantic's validation
                self.refused = snapshot.version
                logger.error(
                    "configuration version %d refused by the pre-filter; keeping version %d: %s",
                    snapshot.version,
                    self.version,
                    exc,
                )
                return
        self.event_filter.replace(source=source, mapping=mapping)
        self.version = snapshot.version
        logger.info("pre-filter follows configuration version %d", snapshot.version)

    def run(self, stop: threading.Event, backoff: Backoff) -> None:
        while not stop.is_set():
            try:
                self.check()
                backoff.reset()
                stop.wait(self.interval)
            except (TransientError, OSError) as exc:
                delay = backoff.next()
                logger.warning(
                    "configuration store unreachable; the pre-filter keeps version %d (%s)",
                    self.version,
                    exc,
                )
                stop.wait(max(delay, self.interval))
