"""The ``kubernetes`` source: core/v1 and events.k8s.io/v1 Event objects.

Implements khook's reason table (first match wins) plus ``node-not-ready`` (khook PR #12), with
one deliberate change: freshness is judged on the *latest* of ``series.lastObservedTime``,
``eventTime``, ``lastTimestamp``/``deprecatedLastTimestamp`` and ``creationTimestamp``, so a
legacy Event whose ``count`` keeps growing keeps firing (khook judged it stale after 15 minutes).
"""

import functools
import hashlib
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar, Final

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

from khook_core import workloads
from khook_core.errors import InvalidEventError
from khook_core.event import Event, EventId, Resource, Severity
from khook_core.sources import jsonwords
from khook_core.sources.base import Dropped, SourceContext, pubsub_ref, require_mapping
from khook_core.timeparse import parse_time

DEFAULT_FRESHNESS = timedelta(minutes=15)
"""khook's staleness window; configurable through plugins.yaml ``freshnessMinutes``."""

EVENT_TYPES = ("pod-restart", "oom-kill", "pod-pending", "probe-failed", "node-not-ready")


class KubernetesConfig(BaseModel):
    """Settings of the kubernetes source (``plugins.yaml`` → ``config:``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    freshness_minutes: float = Field(
        default=DEFAULT_FRESHNESS.total_seconds() / 60, gt=0, alias="freshnessMinutes"
    )
    """Events whose last occurrence is older than this are dropped as ``stale``."""
    namespace: str | None = None
    """Accepted for compatibility with khook's plugins.yaml; the forwarder chooses namespaces."""


def classify_reason(reason: str, message: str, event_type: str) -> str | None:
    """khook's reason table for Pod events, row by row (inputs compared lower-cased).

    The message is lower-cased only by the rows that read it: it is the longest input, and the
    most frequent reason (BackOff) never needs it.
    """
    reason, event_type = reason.lower(), event_type.lower()
    if reason in ("oomkilling", "oomkilled"):
        return "oom-kill"
    if reason in ("killing", "killed"):
        text = message.lower()
        return "oom-kill" if ("oom" in text or "out of memory" in text) else "pod-restart"
    if reason == "backoff":
        return "pod-restart"
    if reason == "failed" and "container" in message.lower():
        return "pod-restart"
    if reason == "failedscheduling":
        return "pod-pending"
    if reason == "pending" or (event_type == "warning" and "pending" in message.lower()):
        return "pod-pending"
    if reason == "unhealthy":
        text = message.lower()
        probes = ("liveness", "readiness", "startup")
        return "probe-failed" if any(p in text for p in probes) else None
    if "probe" in reason and event_type == "warning":
        return "probe-failed"
    return None  # includes row 9: started/created are explicitly nothing


# Pod name → owning workload, for coalescing: Deployment pods end in -<rs hash>-<5>,
# DaemonSet/Job pods in -<5>, StatefulSet pods in -<ordinal>. Generated suffixes use
# Kubernetes' vowel-free alphabet, which keeps words such as "exporter" out of the match.
_SAFE = "[bcdfghjklmnpqrstvwxz2456789]"
_OWNER: Final = re.compile(rf"^(?:(.+)-{_SAFE}{{6,10}}-{_SAFE}{{5}}|(.+)-{_SAFE}{{5}}|(.+)-\d+)$")
"""The three suffixes, tried in that order (an alternation tries each in full before the next):
one match call for a new Pod name, not one per suffix."""


@functools.lru_cache(maxsize=4096)
def owner_of(pod_name: str) -> str:
    match = _OWNER.match(pod_name)
    return pod_name if match is None else match[match.lastindex or 0]


class ObjectRef(TypedDict, total=False):
    """``involvedObject`` (core/v1) or ``regarding`` (events.k8s.io/v1)."""

    kind: str | None
    name: str | None
    namespace: str | None
    uid: str | None
    apiVersion: str | None
    fieldPath: str | None


class ObjectMeta(TypedDict, total=False):
    name: str | None
    namespace: str | None
    uid: str | None
    creationTimestamp: str | None


class EventSeries(TypedDict, total=False):
    count: int | None
    lastObservedTime: str | None


@with_config(ConfigDict(strict=True))
class RawEvent(TypedDict, total=False):
    """The fields of a Kubernetes Event this source reads, in both API shapes.

    Validated in one pass by pydantic-core (strict: a count of ``"7"`` is an error, not 7);
    fields it does not read are ignored, whatever their type.
    """

    apiVersion: str | None
    metadata: ObjectMeta | None
    involvedObject: ObjectRef | None
    regarding: ObjectRef | None
    reason: str | None
    message: str | None
    note: str | None
    type: str | None
    count: int | None
    deprecatedCount: int | None
    series: EventSeries | None
    eventTime: str | None
    lastTimestamp: str | None
    firstTimestamp: str | None
    deprecatedLastTimestamp: str | None
    deprecatedFirstTimestamp: str | None
    reportingController: str | None
    reportingComponent: str | None
    reportingInstance: str | None


_RAW_EVENT = TypeAdapter(RawEvent)
_VALIDATE = _RAW_EVENT.validator.validate_python
"""The schema validator itself: ``TypeAdapter.validate_python`` adds a call and its options."""


def _validate(raw: Any) -> RawEvent:
    if not isinstance(raw, dict):
        require_mapping(raw, "a Kubernetes Event")  # raises, naming the JSON type
    try:
        event: RawEvent = _VALIDATE(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        path = jsonwords.json_path(error["loc"]) or "(body)"
        raise InvalidEventError(f"{path}: {jsonwords.message(error)}", field=path) from None
    return event


_TIMES: dict[object, datetime] = {}
"""Timestamp strings already parsed: a storm's events share a handful of distinct ones."""
_TIMES_MAX = 4096


def _time(value: object, field: str) -> datetime | None:
    """``parse_time`` of a validated (string or null) field, looked up first."""
    if not value:
        return None
    parsed = _TIMES.get(value)
    if parsed is None:
        parsed = parse_time(value, field)  # raises on a malformed one, naming ``field``
        if parsed is not None:  # Go's zero time stays "not set", and is not kept
            if len(_TIMES) >= _TIMES_MAX:
                _TIMES.clear()
            _TIMES[value] = parsed
    return parsed


def read_time(value: object, field: str) -> datetime | None:
    """``parse_time`` of any value, through the cache ``normalize`` reads timestamps from.

    Reads exactly as ``parse_time`` (null and "" are not set, nor is Go's zero time; a value
    that is not a timestamp string raises, naming ``field``), so a caller that reads an Event's
    timestamps before ``normalize`` parses each distinct one once between them.
    """
    if isinstance(value, str):
        return _TIMES.get(value) or _time(value, field)
    return parse_time(value, field)


_SET_FIELDS = frozenset(
    (
        "id",
        "source",
        "type",
        "severity",
        "resource",
        "workload",
        "reason",
        "message",
        "timestamp",
        "first_timestamp",
        "count",
        "group_key",
        "raw_ref",
        "metadata",
    )
)
"""The Event fields ``normalize`` sets (its ``model_fields_set``); the others keep defaults."""


_Judgement = tuple[
    RawEvent,
    bool,
    ObjectRef,
    ObjectMeta,
    str,
    str,
    str,
    str,
    str,
    bool,
    datetime,
    datetime | None,
    int,
]
"""What ``KubernetesSource._judge`` found: the validated Event, whether it is events.k8s.io/v1,
its object reference and metadata, reason, message, Kubernetes type, object kind, event type,
whether it is Normal, its last and first occurrence and its count."""
_EVENT_TYPE: Final = 8
"""The event type's place in a ``_Judgement``."""


class KubernetesSource:
    """Normalises one Kubernetes Event object into at most one khook Event."""

    name: ClassVar[str] = "kubernetes"
    version: ClassVar[str] = "1.0.0"
    event_types: ClassVar[tuple[str, ...]] = EVENT_TYPES
    config_model: ClassVar[type[BaseModel] | None] = KubernetesConfig

    def __init__(self, config: BaseModel | None, context: SourceContext) -> None:
        cfg = config if isinstance(config, KubernetesConfig) else KubernetesConfig()
        self.freshness = timedelta(minutes=cfg.freshness_minutes)
        self.context = context

    def normalize(self, raw: Any, attributes: Mapping[str, str]) -> list[Event]:
        """The Event ``_judge`` decides ``raw`` yields, assembled (or its drop, or its error)."""
        judged = self._judge(raw)
        if isinstance(judged, str):
            raise Dropped(judged)
        (
            obj,
            new_api,
            ref,
            meta,
            reason,
            message,
            k8s_type,
            kind,
            event_type,
            normal,
            last,
            first,
            count,
        ) = judged
        name = ref.get("name") or ""
        namespace = meta.get("namespace") or ref.get("namespace") or ""

        uid = meta.get("uid") or f"{namespace}/{meta.get('name') or ''}"
        api_version = ref.get("apiVersion") or ""
        cluster = attributes.get("khook.cluster", "") if attributes else ""
        workload = workloads.from_attributes(attributes, cluster, namespace) if attributes else None
        # Every value below is a validated RawEvent field or computed here: no second validation.
        # The fields in Event's declaration order (a test holds the result equal to
        # Event.model_validate's), as ``Event.trusted`` builds them without its keyword merge.
        return [
            Event.assemble(
                {
                    "id": _stable_id(uid, count, last),
                    "source": "kubernetes",
                    "type": event_type,
                    "internal_type": "",
                    "severity": Severity.INFO if normal else Severity.WARNING,
                    "resource": Resource.trusted(
                        kind, name, namespace, ref.get("uid") or "", api_version
                    ),
                    "workload": workload or workloads.infer(namespace, kind, name, cluster),
                    "reason": reason,
                    "message": message,
                    "timestamp": last,
                    "first_timestamp": first,
                    "count": count,
                    "status": "firing",
                    "occurrence": "",
                    "group_key": f"{namespace}/{owner_of(name)}"
                    if kind == "Pod"
                    else f"{kind}/{name}",
                    "tags": {},
                    "metadata": {
                        "kind": kind,
                        "apiVersion": api_version,
                        "count": count,
                        "type": k8s_type,
                        "reportingController": obj.get(
                            "reportingController" if new_api else "reportingComponent"
                        )
                        or "",
                        "reportingInstance": obj.get("reportingInstance") or "",
                        "fieldPath": ref.get("fieldPath") or "",
                        "api": "events.k8s.io/v1" if new_api else "v1",
                        "cluster": cluster,
                    },
                    "raw_ref": pubsub_ref(attributes) if attributes else "",
                },
                _SET_FIELDS,
            )
        ]

    def event_types_of(self, raw: Any) -> tuple[tuple[str, ...], str]:
        """The event types ``normalize`` would emit for ``raw`` and "", or no type and the
        reason ``normalize`` would drop it (its ``Dropped.reason``): without building events.

        The forwarder's pre-filter needs only these: the stable id, the workload, the group key
        and the metadata are left to the functions. A drop is returned, not raised: most of a
        cluster's Events are dropped, and an exception costs more than the rest of the verdict.

        Raises:
            InvalidEventError: as ``normalize``.
        """
        judged = self._judge(raw)
        return ((), judged) if isinstance(judged, str) else ((judged[_EVENT_TYPE],), "")

    def _judge(self, raw: Any) -> _Judgement | str:
        """Every rule that decides whether ``raw`` yields an event, and of which type.

        Validates it, reads its API shape and occurrence (a malformed or missing timestamp is
        an ``InvalidEventError``), then names why it is dropped (``normal``,
        ``unsupported-kind``, ``unmapped-reason``, ``stale``) or returns what its Event is
        assembled from; a plain tuple, as this runs for every watched Event.
        """
        obj = _validate(raw)
        new_api = (
            "regarding" in obj
            or "note" in obj
            or (obj.get("apiVersion") or "").startswith("events.k8s.io")
        )
        ref: ObjectRef = (obj.get("regarding") if new_api else obj.get("involvedObject")) or {}
        meta: ObjectMeta = obj.get("metadata") or {}
        reason = obj.get("reason") or ""
        message = (obj.get("note") if new_api else obj.get("message")) or ""
        k8s_type = obj.get("type") or ""
        kind = ref.get("kind") or ""
        last, first, count = self._occurrence(obj, meta, new_api)

        normal = k8s_type.lower() == "normal"
        if kind == "Node" and reason == "NodeNotReady":
            event_type: str | None = "node-not-ready"
        elif kind == "Pod":
            if normal and not self._normal_allowed(reason, message, k8s_type):
                return "normal"
            event_type = classify_reason(reason, message, k8s_type)
        else:
            return "unsupported-kind"
        if event_type is None:
            return "unmapped-reason"
        if self.context.clock() - last > self.freshness:
            return "stale"
        return (
            obj,
            new_api,
            ref,
            meta,
            reason,
            message,
            k8s_type,
            kind,
            event_type,
            normal,
            last,
            first,
            count,
        )

    def _normal_allowed(self, reason: str, message: str, k8s_type: str) -> bool:
        mapped = classify_reason(reason, message, k8s_type)
        if mapped is None:
            return False
        entry = self.context.mapping.get(self.name, mapped)
        return entry is not None and entry.include_normal

    @staticmethod
    def _occurrence(
        obj: RawEvent, meta: ObjectMeta, new_api: bool
    ) -> tuple[datetime, datetime | None, int]:
        """(last occurrence, first occurrence, count) from whichever fields are set.

        The fields are read (and a malformed one reported) in a fixed order: ``eventTime``,
        ``series.lastObservedTime``, the last timestamp, ``metadata.creationTimestamp``, then
        the first timestamp.
        """
        series: EventSeries = obj.get("series") or {}
        if new_api:
            last_key, first_key = "deprecatedLastTimestamp", "deprecatedFirstTimestamp"
            legacy_count = obj.get("deprecatedCount")
        else:
            last_key, first_key = "lastTimestamp", "firstTimestamp"
            legacy_count = obj.get("count")
        known = _TIMES.get  # the usual case inline: a set timestamp already parsed
        value: object = obj.get("eventTime")
        event_time = (known(value) or _time(value, "eventTime")) if value else None
        value = series.get("lastObservedTime")
        observed = (known(value) or _time(value, "series.lastObservedTime")) if value else None
        value = obj.get(last_key)
        last_time = (known(value) or _time(value, last_key)) if value else None
        value = meta.get("creationTimestamp")
        created = (known(value) or _time(value, "metadata.creationTimestamp")) if value else None
        # The latest (and below, the earliest) in this order: of equal instants in different
        # offsets, the first one's, as max() and min() pick.
        last = observed
        for candidate in (event_time, last_time, created):
            if candidate is not None and (last is None or candidate > last):
                last = candidate
        if last is None:
            raise InvalidEventError(
                "the Event has no timestamp (series.lastObservedTime, eventTime, "
                f"{last_key} or metadata.creationTimestamp)",
                field="metadata.creationTimestamp",
            )
        value = obj.get(first_key)
        first = (known(value) or _time(value, first_key)) if value else None
        if first is None:
            first = event_time or min(
                t for t in (observed, event_time, last_time, created) if t is not None
            )
        count = series.get("count") or legacy_count or 1
        return last, first, max(count, 1)


_STAMPS: dict[datetime, str] = {}
"""``datetime.timestamp()`` as text, by instant: in a storm the same few repeat. Keyed by the
instant itself (equal instants in any offset have the one timestamp)."""


def _stable_id(uid: str, count: int, last: datetime) -> EventId:
    """``stable_id("kubernetes", uid, count, last.timestamp())``, without its generic join."""
    stamp = _STAMPS.get(last)
    if stamp is None:
        if len(_STAMPS) >= _TIMES_MAX:
            _STAMPS.clear()
        stamp = _STAMPS[last] = str(last.timestamp())
    text = f"kubernetes\x1f{uid}\x1f{count}\x1f{stamp}"
    return EventId(
        "kubernetes:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    )
