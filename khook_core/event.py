"""The unified Event: the only thing that crosses from sources to hooks.

Every source plugin turns its raw payload into ``Event`` objects; matching, dedup, prompts and
dispatch never look at a raw payload again.
"""

import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, NewType

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

# A stable identifier: the same raw occurrence always yields the same id, so redeliveries of one
# payload are recognisable anywhere downstream.
EventId = NewType("EventId", str)


class Severity(StrEnum):
    """Ordered severities; comparisons use ``rank``."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2, Severity.CRITICAL: 3}


_new = object.__new__
_set = object.__setattr__
"""What the trusted constructors call, looked up once: they run several times per event."""


class Resource(BaseModel):
    """What the event is about. ``namespace`` is empty for non-Kubernetes sources."""

    model_config = ConfigDict(frozen=True)

    kind: str = ""
    name: str = ""
    namespace: str = ""
    uid: str = ""
    api_version: str = ""

    @classmethod
    def trusted(
        cls, kind: str, name: str, namespace: str, uid: str, api_version: str
    ) -> "Resource":
        """Build without validation from values already known to be strings (see
        ``Event.trusted``)."""
        new = _new(cls)
        _set(
            new,
            "__dict__",
            {
                "kind": kind,
                "name": name,
                "namespace": namespace,
                "uid": uid,
                "api_version": api_version,
            },
        )
        # A set of its own: ``model_copy(update=...)`` adds the updated names to it.
        _set(new, "__pydantic_fields_set__", set(_RESOURCE_FIELDS))
        _set(new, "__pydantic_extra__", None)
        _set(new, "__pydantic_private__", None)
        return new

    def ref(self) -> str:
        """``namespace/kind/name``, the resource part of a dedup key."""
        return f"{self.namespace}/{self.kind}/{self.name}"


_RESOURCE_FIELDS = frozenset(("kind", "name", "namespace", "uid", "api_version"))


class Workload(BaseModel):
    """The workload an event is about (a Deployment, a StatefulSet, a service), beside the
    ``resource`` it names: the crash-looping Pod's Deployment, the alert's ``deployment`` label,
    the GitHub environment's service. Events of every source about one workload correlate into
    one incident. Empty (``kind`` and ``name`` unset) when the source could not tell.
    """

    model_config = ConfigDict(frozen=True)

    cluster: str = ""
    namespace: str = ""
    kind: str = ""
    name: str = ""
    inferred: bool = False
    """True when guessed from a name (pod-template-hash suffixes), not read from owner data."""

    @classmethod
    def trusted(
        cls, cluster: str, namespace: str, kind: str, name: str, inferred: bool = False
    ) -> "Workload":
        """Build without validation from values already known to be strings, as the
        constructor given every field would (``Resource.trusted``): a source infers one for
        every new Pod name, where validation would be most of the inference's cost."""
        new = _new(cls)
        _set(
            new,
            "__dict__",
            {
                "cluster": cluster,
                "namespace": namespace,
                "kind": kind,
                "name": name,
                "inferred": inferred,
            },
        )
        _set(new, "__pydantic_fields_set__", set(_WORKLOAD_FIELDS))
        _set(new, "__pydantic_extra__", None)
        _set(new, "__pydantic_private__", None)
        return new

    def __bool__(self) -> bool:
        return bool(self.kind and self.name)

    def ref(self) -> str:
        """``namespace/kind/name``: the correlation key. The cluster is left out so that a
        source that cannot know it (a GitHub deployment) still meets the cluster's events."""
        return f"{self.namespace}/{self.kind}/{self.name}"


_WORKLOAD_FIELDS = frozenset(("cluster", "namespace", "kind", "name", "inferred"))


class Event(BaseModel):
    """One normalised occurrence from any source."""

    model_config = ConfigDict(frozen=True)

    id: EventId
    source: str
    type: str = Field(description="kebab-case event type, as matched by hooks")
    internal_type: str = ""
    severity: Severity = Severity.WARNING
    resource: Resource = Field(default_factory=Resource)
    workload: Workload = Field(default_factory=Workload)
    reason: str = ""
    message: str = ""
    timestamp: AwareDatetime = Field(description="the last occurrence")
    first_timestamp: AwareDatetime | None = None
    count: int = 1
    status: Literal["firing", "resolved"] = "firing"
    # Distinguishes separate occurrences of one condition on one resource (for example an
    # alert's fingerprint and start time); part of the dedup key. Empty means "same condition".
    occurrence: str = ""
    # Groups related events for coalescing (an alert group key, an owning workload).
    group_key: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    raw_ref: str = ""

    @classmethod
    def trusted(cls, **fields: Any) -> "Event":
        """Build without validation, for a source that validated its raw payload itself.

        Every value must already have its field's type (``resource`` a ``Resource``, times
        aware datetimes); a test holds the result equal to the validated constructor's. It
        spares the hot path of a storm a second validation of the same data.
        """
        new = _new(cls)
        # Every field, in declaration order; fresh mutable defaults, then the given values.
        values = {**_EVENT_TEMPLATE, "tags": {}, "metadata": {}, **fields}
        _set(new, "__dict__", values)
        _set(new, "__pydantic_fields_set__", set(fields))
        _set(new, "__pydantic_extra__", None)
        _set(new, "__pydantic_private__", None)
        return new

    @classmethod
    def assemble(cls, values: dict[str, Any], fields_set: frozenset[str]) -> "Event":
        """``trusted`` for a source that builds every field itself: ``values`` holds each field
        of ``Event``, in declaration order, and ``fields_set`` the names it set (what
        ``trusted`` would have been given). It spares the per-event keyword merge."""
        new = _new(cls)
        _set(new, "__dict__", values)
        _set(new, "__pydantic_fields_set__", set(fields_set))
        _set(new, "__pydantic_extra__", None)
        _set(new, "__pydantic_private__", None)
        return new

    def evolve(self, **changes: Any) -> "Event":
        """A copy with ``changes`` applied, like ``model_copy(update=...)`` (which does not
        validate either), at half its cost: it runs once per matched event in a storm."""
        new = _new(Event)
        _set(new, "__dict__", {**self.__dict__, **changes})
        _set(new, "__pydantic_fields_set__", self.__pydantic_fields_set__ | changes.keys())
        _set(new, "__pydantic_extra__", None)
        _set(new, "__pydantic_private__", None)
        return new


# Every field of Event with its default (None where required), for ``Event.trusted``; the
# mutable defaults (tags, metadata) are made fresh per event, the frozen ones are shared.
_FACTORY_DEFAULTS: dict[str, Any] = {"resource": Resource(), "workload": Workload()}
_EVENT_TEMPLATE: dict[str, Any] = {
    name: None if info.is_required() else _FACTORY_DEFAULTS.get(name, info.default)
    for name, info in Event.model_fields.items()
}


def stable_id(source: str, *parts: object) -> EventId:
    """A short, stable id from the identifying parts of a raw occurrence.

    Encoded with ``surrogatepass``: a part that is not valid Unicode (a lone surrogate from a
    payload that reached a source without the transports' checks) still gets an id.
    """
    text = "\x1f".join([source, *map(str, parts)])
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return EventId(f"{source}:{digest[:24]}")


def utcnow() -> datetime:
    """The wall clock, timezone-aware. Injected everywhere time matters so tests can fix it."""
    return datetime.now(UTC)
