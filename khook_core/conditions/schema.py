"""The variables a ``when:`` condition sees, in one place: name, CEL type, meaning, getter.

A hook condition sees the Event as ``event`` (its fields, ``tags``, ``metadata``,
``resource`` and ``workload``); a field-mapping rule's condition sees the payload before any
Event exists, as ``payload`` and ``meta``. Each variable is declared to the CEL type checker by
its full dotted name, so ``event.severty`` is an unknown name at load time, while ``tags``,
``metadata`` and ``workload`` are maps whose keys are only known at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Final

from khook_core.event import Event


@dataclass(frozen=True)
class Variable:
    """One variable: ``cel_type`` in CEL's notation, ``read`` takes the evaluation root."""

    name: str
    cel_type: str
    doc: str
    read: Callable[[Any], Any]
    mapped: bool = False
    """Whether the mapping row (event-mappings.yaml) can change it: matching on it applies the
    row first."""


def _workload(event: Event) -> Any:
    """``metadata.workload`` when a source put an object there (the owning workload)."""
    found = event.metadata.get("workload")
    return found if isinstance(found, dict) else {}


_SEVERITY_RANK: Final = {"info": 0, "warning": 1, "error": 2, "critical": 3}

EVENT_VARIABLES: Final[tuple[Variable, ...]] = (
    Variable("event.id", "string", "stable id of the occurrence", attrgetter("id")),
    Variable(
        "event.source",
        "string",
        "kubernetes, alertmanager, webhook, kafka, cdc, gcp, ...",
        attrgetter("source"),
    ),
    Variable(
        "event.type",
        "string",
        "kebab-case event type (pod-restart, oom-kill, ...)",
        attrgetter("type"),
    ),
    Variable(
        "event.internal_type",
        "string",
        "the mapping row's internalType",
        lambda e: e.internal_type,
        mapped=True,
    ),
    Variable(
        "event.severity",
        "string",
        "info, warning, error or critical (after the mapping row)",
        attrgetter("severity._value_"),
        mapped=True,
    ),
    Variable(
        "event.severity_rank",
        "int",
        "severity as a number: info 0, warning 1, error 2, critical 3",
        lambda e: _SEVERITY_RANK[e.severity._value_],
        mapped=True,
    ),
    Variable(
        "event.reason",
        "string",
        "the source's reason (BackOff, OOMKilling, ...)",
        attrgetter("reason"),
    ),
    Variable(
        "event.message", "string", "the source's message text (untrusted)", attrgetter("message")
    ),
    Variable("event.status", "string", "firing or resolved", attrgetter("status")),
    Variable("event.count", "int", "how many times it occurred", attrgetter("count")),
    Variable("event.timestamp", "timestamp", "the last occurrence", attrgetter("timestamp")),
    Variable(
        "event.first_timestamp",
        "timestamp",
        "the first occurrence (the last when the source gave none)",
        lambda e: e.first_timestamp or e.timestamp,
    ),
    Variable(
        "event.group_key",
        "string",
        "what related events share (alert group, workload)",
        attrgetter("group_key"),
    ),
    Variable(
        "event.occurrence",
        "string",
        "the sender's id of this occurrence, if any",
        attrgetter("occurrence"),
    ),
    Variable(
        "event.resource.kind",
        "string",
        "kind of the resource (Pod, Deployment, ...)",
        attrgetter("resource.kind"),
    ),
    Variable("event.resource.name", "string", "name of the resource", attrgetter("resource.name")),
    Variable(
        "event.resource.namespace",
        "string",
        "namespace (empty outside Kubernetes)",
        attrgetter("resource.namespace"),
    ),
    Variable("event.resource.uid", "string", "uid of the resource", attrgetter("resource.uid")),
    Variable(
        "event.resource.api_version",
        "string",
        "apiVersion of the resource",
        attrgetter("resource.api_version"),
    ),
    Variable(
        "event.tags",
        "map(string, string)",
        "tags: the source's and the mapping row's (labels, topic, table, ...)",
        attrgetter("tags"),
        mapped=True,
    ),
    Variable(
        "event.metadata",
        "map(string, dyn)",
        "source-specific JSON (a CDC change's row values, an alert's annotations, ...)",
        attrgetter("metadata"),
    ),
    Variable(
        "event.workload",
        "map(string, dyn)",
        "the owning workload when the source knows it (metadata.workload), else {}",
        _workload,
    ),
)

PAYLOAD_VARIABLES: Final[tuple[Variable, ...]] = (
    Variable("payload", "dyn", "the decoded payload (JSON)", lambda root: root[0]),
    Variable(
        "meta",
        "map(string, dyn)",
        "transport metadata (what @name reads in the map form)",
        lambda root: root[1],
    ),
)


def described(variables: tuple[Variable, ...]) -> dict[str, Any]:
    """name → ``type: meaning``, for ``khook schema`` and error messages."""
    return {v.name: f"{v.cel_type}: {v.doc}" for v in variables}
