"""Owner resolution: the workload (Deployment, StatefulSet, DaemonSet, CronJob, Job) behind the
Pod an Event is about, read from ``metadata.ownerReferences`` with one ``get`` per object.

A storm names the same few Pods thousands of times, so every object's controller is cached, in
a cache bounded in entries (memory stays flat) and expiring (a Pod's name may be reused by a new
owner; a failed lookup is retried later). Pods of one ReplicaSet share the ReplicaSet's entry, so
a new Pod costs one call, not two. A lookup that fails (gone, forbidden, API down) is cached as
"no owner data", and the event falls back to the name heuristic in ``khook_core.workloads``.

Lookups run on the publisher's sender threads, just before a batch is published
(``filtering.attach_workloads``), so an API call never holds the watch thread. They are rate
limited (a token bucket, ``lookups_per_second`` with five seconds' worth of burst): a storm
naming thousands of new Pods at once would otherwise hold its own publishing behind one API call
per event. A lookup over the limit is skipped, not cached (the event gets the heuristic; a later
event of the Pod is looked up). The cache is shared by the sender threads under a lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from khook_core.event import Workload

logger = logging.getLogger(__name__)

TOP_LEVEL_KINDS: Final = frozenset(("Deployment", "StatefulSet", "DaemonSet", "CronJob"))
"""Controllers that are never owned by another workload worth naming."""
LOOKED_UP_KINDS: Final = frozenset(("Pod", "ReplicaSet", "Job"))
"""Objects whose controller is read from the API: a Job may belong to a CronJob."""
DEFAULT_LOOKUPS_PER_SECOND: Final = 20.0
"""At a few milliseconds a call, 20 lookups a second hold a sender at most ~10 % of its time; a
storm of one workload's Pods needs one per Pod, once (then cached)."""
BURST_SECONDS: Final = 5.0
"""The bucket holds this many seconds' worth of lookups: a fresh storm's first Pods all resolve."""
MAX_CHAIN: Final = 4
"""Pod → ReplicaSet → Deployment is the longest built-in chain; the bound stops a cycle."""


@dataclass(frozen=True)
class OwnerRef:
    """The controlling owner of one object."""

    kind: str
    name: str


OwnerFetch = Callable[[str, str, str], "dict[str, Any] | None"]
"""Reads one object's metadata by (kind, namespace, name); ``None`` when it cannot be read
(gone, forbidden, API down)."""


_NO_OWNER: Final = OwnerRef("", "")


def controller_of(obj: dict[str, Any]) -> OwnerRef:
    """The ``controller: true`` owner reference of an object, or ``_NO_OWNER``."""
    meta = obj.get("metadata")
    refs = meta.get("ownerReferences") if isinstance(meta, dict) else None
    for ref in refs if isinstance(refs, list) else ():
        if isinstance(ref, dict) and ref.get("controller") is True:
            kind, name = ref.get("kind"), ref.get("name")
            if isinstance(kind, str) and isinstance(name, str) and kind and name:
                return OwnerRef(kind, name)
    return _NO_OWNER


class OwnerResolver:
    """Resolves an object to its top workload through a bounded, expiring cache.

    Args:
        fetch: reads one object's metadata from the API server.
        max_entries: objects remembered; past it the least recently used are forgotten.
        ttl_seconds: how long an object's controller (or its absence) is trusted.
        lookups_per_second: the rate limit of API calls (five seconds' worth in a burst).
        monotonic: the clock of the expiry and the rate limit, injected for tests.
    """

    def __init__(
        self,
        fetch: OwnerFetch,
        *,
        max_entries: int = 4096,
        ttl_seconds: float = 300.0,
        lookups_per_second: float = DEFAULT_LOOKUPS_PER_SECOND,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._max = max_entries
        self._ttl = ttl_seconds
        self._now = monotonic
        self._cache: OrderedDict[tuple[str, str, str], tuple[float, OwnerRef | None]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()
        self.api_calls = 0
        """Objects read from the API server since start (a metric and a benchmark figure)."""
        self.skipped = 0
        """Lookups skipped over the rate limit (those events got the name heuristic)."""
        self._rate = lookups_per_second
        self._burst = max(1.0, BURST_SECONDS * lookups_per_second)
        self._tokens = self._burst
        self._refilled = monotonic()

    def resolve(self, namespace: str, kind: str, name: str) -> Workload:
        """The workload owning ``kind/name`` in ``namespace``; empty when there is no owner data
        (the caller then uses the name heuristic)."""
        if kind in TOP_LEVEL_KINDS:
            return Workload(namespace=namespace, kind=kind, name=name)
        current = OwnerRef(kind, name)
        for _ in range(MAX_CHAIN):
            if current.kind not in LOOKED_UP_KINDS:
                break
            owner = self._controller(namespace, current)
            if owner is None:  # a step unread (failed or over the limit): no owner data
                return Workload()
            if owner is _NO_OWNER:
                break
            current = owner
        # The top of the chain; a Pod without a controller is its own workload.
        return Workload(namespace=namespace, kind=current.kind, name=current.name)

    def _controller(self, namespace: str, obj: OwnerRef) -> OwnerRef | None:
        key = (namespace, obj.kind, obj.name)
        now = self._now()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                self._cache.move_to_end(key)
                return hit[1]
            if not self._take_token(now):
                self.skipped += 1
                return None
        # Two threads may both miss and both read: harmless, and no lock is held across I/O.
        self.api_calls += 1
        fetched = self._fetch(obj.kind, namespace, obj.name)
        owner = None if fetched is None else controller_of(fetched)
        with self._lock:
            self._cache[key] = (now + self._ttl, owner)
            self._cache.move_to_end(key)
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return owner

    def _take_token(self, now: float) -> bool:
        """One lookup's token from the bucket (called under the lock)."""
        self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self._rate)
        self._refilled = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def __len__(self) -> int:
        return len(self._cache)
