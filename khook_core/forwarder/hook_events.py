"""A core/v1 Event on the Hook for each firing (``reason: Fired``, the agent and the task id).

One Event object per Hook, event type and resource (a stable name), created at the first firing
and patched at the next ones (``count``, ``lastTimestamp`` and the latest agent and task id in
the message), as the kubelet counts a repeating Event: ``kubectl describe hook`` shows one line
per resource with how often it fired. Writes are rate-limited per Hook (a token bucket of
``burst`` writes, refilled at one per ``refill`` seconds); firings over the limit are not lost
but folded into the count of the next write.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from khook_core.forwarder.hook_status import GROUP, MERGE_PATCH, VERSION, rfc3339
from khook_core.state.base import Firing

logger = logging.getLogger(__name__)

REASON: Final = "Fired"
COMPONENT: Final = "khook-forwarder"
BURST: Final = 10
REFILL_S: Final = 6.0
"""Ten Event writes at once per Hook, then one every six seconds (ten a minute)."""
HTTP_NOT_FOUND: Final = 404
HTTP_CONFLICT: Final = 409


@dataclass
class _Pending:
    firings: int
    first: datetime
    latest: Firing


@dataclass
class _Bucket:
    tokens: float
    at: float


def event_name(hook_name: str, firing: Firing) -> str:
    """Stable per Hook, event type and resource; a valid object name of at most 253 chars."""
    digest = hashlib.sha256(f"{firing.event_type}\0{firing.resource}".encode()).hexdigest()[:16]
    return f"{hook_name[:200]}.fired.{digest}"


def message_of(firing: Firing) -> str:
    return (
        f"{firing.event_type} on {firing.resource}: sent to agent {firing.agent}, "
        f"task {firing.task_id or '(none)'}"
    )


class FiringEvents:
    """Records firings as Events on their Hook; ``flush`` writes what the rate limit allows."""

    def __init__(
        self,
        core: client.CoreV1Api,
        *,
        monotonic: Callable[[], float],
        burst: int = BURST,
        refill: float = REFILL_S,
    ) -> None:
        self.core = core
        self.monotonic = monotonic
        self.burst = burst
        self.refill = refill
        self.pending: dict[str, dict[str, _Pending]] = {}  # hook key → event name → firings
        self.counts: dict[str, dict[str, int]] = {}  # hook key → event name → count written
        self.buckets: dict[str, _Bucket] = {}
        self.written = 0
        self.deferred = 0

    def add(self, hook_key: str, firing: Firing) -> None:
        """One firing of the Hook ``namespace/name`` to be recorded."""
        name = event_name(hook_key.split("/", 1)[-1], firing)
        per_hook = self.pending.setdefault(hook_key, {})
        known = per_hook.get(name)
        if known is None:
            per_hook[name] = _Pending(1, firing.at, firing)
        else:
            known.firings += 1
            known.first = min(known.first, firing.at)
            if firing.at >= known.latest.at:
                known.latest = firing

    def forget(self, live_hooks: set[str]) -> None:
        """Drop what belongs to Hooks no longer in the cluster."""
        for key in [k for k in self.pending if k not in live_hooks]:
            del self.pending[key]
        for key in [k for k in self.buckets if k not in live_hooks]:
            del self.buckets[key]
        for key in [k for k in self.counts if k not in live_hooks]:
            del self.counts[key]

    def _take(self, hook_key: str) -> bool:
        now = self.monotonic()
        bucket = self.buckets.setdefault(hook_key, _Bucket(float(self.burst), now))
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) / self.refill)
        bucket.at = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    def flush(self, hooks: Mapping[str, Mapping[str, Any]]) -> None:
        """Write pending Events of the Hooks in ``hooks`` (key → object) within the limit."""
        for hook_key, per_hook in list(self.pending.items()):
            obj = hooks.get(hook_key)
            if obj is None:
                continue
            for name, pending in list(per_hook.items()):
                if not self._take(hook_key):
                    self.deferred += 1
                    break
                try:
                    self._write(obj, self.counts.setdefault(hook_key, {}), name, pending)
                except ApiException as exc:
                    logger.warning("Event %s on Hook %s not written: %s", name, hook_key, exc)
                    continue
                del per_hook[name]
            if not per_hook:
                del self.pending[hook_key]

    def _write(
        self, obj: Mapping[str, Any], counts: dict[str, int], name: str, pending: _Pending
    ) -> None:
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "default")
        latest = pending.latest
        self.written += 1
        if name in counts:
            try:
                self._patch(namespace, name, counts[name] + pending.firings, latest)
                counts[name] += pending.firings
                return
            except ApiException as exc:
                if exc.status != HTTP_NOT_FOUND:  # expired (the Event TTL): create afresh
                    raise
                del counts[name]
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "Hook",
                "name": meta.get("name"),
                "namespace": namespace,
                "uid": meta.get("uid"),
            },
            "reason": REASON,
            "type": "Normal",
            "message": message_of(latest),
            "count": pending.firings,
            "firstTimestamp": rfc3339(pending.first),
            "lastTimestamp": rfc3339(latest.at),
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
        }
        try:
            created: Any = self.core.create_namespaced_event(
                namespace,
                body,  # type: ignore[arg-type]  # plain JSON, not the client's model
                _preload_content=False,
            )
            created.drain_conn()  # an unread body would be read as the next reply
            created.release_conn()
            counts[name] = pending.firings
        except ApiException as exc:
            if exc.status != HTTP_CONFLICT:
                raise
            # written by an earlier run of the forwarder: continue its count
            response: Any = self.core.read_namespaced_event(name, namespace, _preload_content=False)
            try:
                count = int(json.loads(response.data).get("count") or 1)
            finally:
                response.release_conn()
            self._patch(namespace, name, count + pending.firings, latest)
            counts[name] = count + pending.firings

    def _patch(self, namespace: str, name: str, count: int, latest: Firing) -> None:
        body = {"count": count, "lastTimestamp": rfc3339(latest.at), "message": message_of(latest)}
        patched: Any = self.core.patch_namespaced_event(
            name, namespace, body, _content_type=MERGE_PATCH, _preload_content=False
        )
        patched.drain_conn()  # an unread body would be read as the next reply
        patched.release_conn()
