"""The forwarder's pre-filter: publish only what could fire a hook, and say why the rest is not.

Most Events in a cluster are Normal chatter (Scheduled, Pulled, Created, Started). Deciding here,
with the same normaliser and mapping table the functions use, keeps them off Pub/Sub entirely.
The filter holds no per-event state, so memory stays flat however many Events go past; a
repeated Event (``count`` or ``series.count`` grew) arrives as MODIFIED and is forwarded while
its last occurrence is fresh, and the functions' dedup decides whether it fires again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from khook_core.errors import InvalidEventError
from khook_core.mapping import MappingTable
from khook_core.sources.kubernetes import KubernetesSource, read_time
from khook_core.workloads import ATTR_WORKLOAD_KIND, ATTR_WORKLOAD_NAME, ATTR_WORKLOAD_NAMESPACE

if TYPE_CHECKING:
    from khook_core.forwarder.owners import OwnerResolver

SOURCE = "kubernetes"

# Attribute names of the Pub/Sub message contract (docs/forwarder.md).
ATTR_SOURCE = "khook.source"
ATTR_CLUSTER = "khook.cluster"
ATTR_API = "khook.api"
ATTR_NAMESPACE = "khook.namespace"
ATTR_REASON = "khook.reason"
ATTR_TYPE = "khook.type"


@dataclass(frozen=True)
class OwnedObject:
    """The object an Event is about, whose workload is looked up before it is published."""

    namespace: str
    kind: str
    name: str


@dataclass(slots=True)
class Outbound:
    """One message for Pub/Sub: the Event JSON and the contract's attributes.

    ``owned`` names the object whose workload (``khook.workload.*``) the sender adds to the
    attributes before publishing (``attach_workloads``); None when owners are not resolved.
    ``seq`` is its place in the publish queue, given there (``BoundedQueue.put``).
    """

    data: bytes
    attributes: dict[str, str]
    owned: OwnedObject | None = None
    seq: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True)
class Verdict:
    """Either a message to publish or the reason (a metric label) it is filtered."""

    message: Outbound | None = None
    reason: str = ""
    last: datetime | None = None
    """The Event's last occurrence, when it could be read (it anchors a later re-list)."""


def last_occurrence(obj: Mapping[str, Any]) -> datetime | None:
    """Latest of series.lastObservedTime, eventTime, (deprecated)lastTimestamp, creationTimestamp.

    Both APIs' field names are tried, so this works for either without knowing which it is.

    Raises:
        InvalidEventError: a timestamp field holds something that is not a timestamp.
    """
    series = obj.get("series")
    meta = obj.get("metadata")
    last: datetime | None = None
    for value in (
        series.get("lastObservedTime") if isinstance(series, dict) else None,
        obj.get("eventTime"),
        obj.get("lastTimestamp"),
        obj.get("deprecatedLastTimestamp"),
        meta.get("creationTimestamp") if isinstance(meta, dict) else None,
    ):
        if value is not None:
            # The source's cache: the filter's judgement reads the same strings again.
            parsed = read_time(value, "timestamp")
            # Of equal instants in different offsets, the first one's (as max() picks).
            if parsed is not None and (last is None or parsed > last):
                last = parsed
    return last


def _json_bytes(obj: Mapping[str, Any]) -> bytes:
    """``obj`` as compact UTF-8 JSON. A lone surrogate (a ``\\ud800`` escape in the API's JSON
    decodes to one) has no UTF-8 form: that object is written with ASCII escapes instead, the
    same JSON, rather than failing the watch on every retry."""
    try:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return json.dumps(obj, separators=(",", ":")).encode()


def _text(obj: Mapping[str, Any], *path: str) -> str:
    value: Any = obj
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, str) else ""


class EventFilter:
    """Decides, for one watched Event object, whether it is published.

    Args:
        source: the configured kubernetes source (its ``event_types_of`` applies khook's rules).
        mapping: the mapping table; a disabled or unmapped type is filtered.
        api: the watched API, sent as ``khook.api``.
        cluster: sent as ``khook.cluster``.
        forward_all: skip the source and mapping checks (age and DELETED still apply).
        clock: the wall clock, injected for tests.
        resolve_owners: a published message names its object (``Outbound.owned``) so the
            sender adds its workload (``attach_workloads``); off leaves it to the functions'
            name heuristic.
    """

    def __init__(
        self,
        *,
        source: KubernetesSource,
        mapping: MappingTable,
        api: str,
        cluster: str,
        forward_all: bool,
        clock: Callable[[], datetime],
        resolve_owners: bool = False,
    ) -> None:
        self.resolve_owners = resolve_owners
        self._judges = (source, mapping)
        self.api = api
        self.cluster = cluster
        self.forward_all = forward_all
        self.clock = clock
        self._base_attributes = {ATTR_SOURCE: SOURCE, ATTR_CLUSTER: cluster, ATTR_API: api}

    @property
    def source(self) -> KubernetesSource:
        return self._judges[0]

    @property
    def mapping(self) -> MappingTable:
        return self._judges[1]

    def replace(self, *, source: KubernetesSource, mapping: MappingTable) -> None:
        """Judge by a new configuration from now on (one assignment: never half of each)."""
        self._judges = (source, mapping)

    def decide(
        self, kind: str, obj: dict[str, Any], *, newer_than: datetime, text: str | None = None
    ) -> Verdict:
        """Judge one ``ADDED``/``MODIFIED``/``DELETED`` object.

        Args:
            kind: the watch event type (list items count as ``ADDED``).
            obj: the Event object exactly as the API returned it.
            newer_than: the last occurrence must be after this instant (look-back or freshness).
            text: ``obj``'s JSON text as the API server sent it, when known: published as it
                is (the same object, not encoded a second time).
        """
        if kind == "DELETED":
            return Verdict(reason="deleted")  # expiry after --event-ttl, not an occurrence
        try:
            last = last_occurrence(obj)
        except InvalidEventError:
            last = None
        if last is None:
            if not self.forward_all:
                return Verdict(reason="invalid")
        elif last <= newer_than:
            return Verdict(reason="stale", last=last)
        attributes = self.attributes(obj)
        if not self.forward_all:
            reason = self._rejection(obj, attributes)
            if reason is not None:
                return Verdict(reason=reason, last=last)
        owned = owned_object(obj, attributes[ATTR_NAMESPACE]) if self.resolve_owners else None
        data = text.encode() if text is not None else _json_bytes(obj)
        return Verdict(message=Outbound(data, attributes, owned), last=last)

    def attributes(self, obj: Mapping[str, Any]) -> dict[str, str]:
        """The contract's attributes for one Event object."""
        namespace = _text(obj, "metadata", "namespace") or _text(
            obj, "regarding" if "regarding" in obj else "involvedObject", "namespace"
        )
        return {
            **self._base_attributes,
            ATTR_NAMESPACE: namespace,
            ATTR_REASON: _text(obj, "reason"),
            ATTR_TYPE: _text(obj, "type"),
        }

    def _rejection(self, obj: dict[str, Any], attributes: Mapping[str, str]) -> str | None:
        """Why the functions would drop this object, or None when some event could fire."""
        source, mapping = self._judges
        try:
            types, dropped = source.event_types_of(obj)
        except InvalidEventError:
            return "invalid"
        if dropped:
            return dropped
        reasons = [mapping.drop_reason(source.name, event_type) for event_type in types]
        if not reasons:
            return "no-event"
        if any(reason is None for reason in reasons):
            return None
        return next(r for r in reasons if r is not None)


def owned_object(obj: Mapping[str, Any], namespace: str) -> OwnedObject | None:
    """The object whose workload a published Event names, when the Event says which."""
    ref = "regarding" if "regarding" in obj else "involvedObject"
    kind, name = _text(obj, ref, "kind"), _text(obj, ref, "name")
    return OwnedObject(namespace, kind, name) if kind and name and namespace else None


def attach_workloads(owners: OwnerResolver, batch: Sequence[Outbound]) -> None:
    """Add ``khook.workload.*`` to each message of ``batch`` whose owner can be resolved.

    The publisher's sender thread calls it on each batch it is about to publish, so an owner
    lookup (an API call on a cache miss) never holds the watch thread, and filtered chatter
    costs none. A message retried after a failed publish keeps what it was given.
    """
    for message in batch:
        owned = message.owned
        if owned is None or ATTR_WORKLOAD_KIND in message.attributes:
            continue
        workload = owners.resolve(owned.namespace, owned.kind, owned.name)
        if workload:
            message.attributes[ATTR_WORKLOAD_NAMESPACE] = workload.namespace
            message.attributes[ATTR_WORKLOAD_KIND] = workload.kind
            message.attributes[ATTR_WORKLOAD_NAME] = workload.name


def window_start(now: datetime, seconds: float) -> datetime:
    """``now - seconds``: the oldest last-occurrence still worth forwarding."""
    return now - timedelta(seconds=seconds)
