"""What happened to one event for one hook: a ``Decision`` of a ``DecisionKind``.

The kinds are a closed set, string-valued, so the JSON answers, the log lines and the audit
record carry exactly the text they always carried (``dispatched``, ``failed:transient`` …).
One kind is open-ended: ``DROPPED`` takes a reason, because sources explain their own drops
(``Dropped("stale")``); its text is ``dropped:<reason>``. Readers branch on ``Decision.kind``;
only ``parse`` turns a decision text read back from JSON into a kind.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from khook_core.event import Event


class DecisionKind(StrEnum):
    """Every outcome of the pipeline and the sweep (the value is what JSON and logs show)."""

    DISPATCHED = "dispatched"
    """The prompt was sent; the task id is in the audit trail."""
    DUPLICATE = "duplicate"
    """The same firing already holds its claim (a redelivery, a repeat within the window)."""
    NO_HOOK = "no-hook"
    RESOLVED = "resolved"
    """The event closes a condition (a resolved alert): its claim was released."""
    COALESCED = "coalesced"
    """Held back by its coalescing group's window, summarised in the group's next run."""
    SUPPRESSED_BUDGET = "suppressed:budget"
    """Held back by a rate limit or the cap on runs in flight, summarised in a later run."""
    DROPPED = "dropped"
    """Deliberately ignored, with a reason: shown as ``dropped:<reason>``."""
    FAILED_TRANSIENT = "failed:transient"
    """The agent could not be reached (or the time ran out): retryable, the claim released."""
    FAILED_UNCERTAIN = "failed:uncertain"
    """A resumed send may have reached the agent: retryable, the claim kept."""
    FAILED_REJECTED = "failed:rejected"
    """The agent refused the request: permanent, the claim kept."""
    FAILED_CIRCUIT_OPEN = "failed:circuit-open"
    """The agent's circuit is open (or another event probes it): retryable, held."""
    FAILED_IN_FLIGHT = "failed:in-flight"
    """An earlier attempt of this delivery holds the claim and may still run: retryable."""
    FAILED_STATE_UNAVAILABLE = "failed:state-unavailable"
    """The state store could not be reached: retryable, nothing dispatched."""
    FAILED_INVALID = "failed:invalid"
    """``khook replay`` only: the input was invalid (the functions answer 4xx instead)."""
    SUPPRESSED_SILENCED = "suppressed:silenced"
    """Muted by a silence or a maintenance window (its id in ``detail``), before any claim:
    the same event after it ends fires normally."""
    OPENED_INCIDENT = "opened:incident"
    """The event opened an incident for its workload and its one agent run was sent."""
    JOINED_INCIDENT = "joined:incident"
    """The event joined its workload's open incident: evidence for the next follow-up."""
    FOLLOW_UP = "follow-up"
    """The sweep sent an incident's new evidence into its conversation."""


class DropReason(StrEnum):
    """The pipeline's and the sweep's own drop reasons; the mapping table (``unmapped``,
    ``disabled``) and the sources (``Dropped(reason)``) give theirs as plain strings."""

    NO_EVENT = "no-event"
    UNREADABLE_BACKLOG = "unreadable-backlog"
    HOOK_GONE = "hook-gone"
    CONDITION_ERROR = "condition-error"


class Decision(NamedTuple):
    """What happened to one event for one hook (or to a payload that produced no event).

    A named tuple rather than a frozen dataclass: one is built per event and hook, and tuple
    construction is several times cheaper in a storm.
    """

    kind: DecisionKind
    event: Event | None = None
    hook: str | None = None
    agent: str | None = None
    prompt: str | None = None
    key: str | None = None
    task_id: str = ""
    detail: str = ""
    retryable: bool = False
    reason: str = ""
    """Why a ``DROPPED`` payload or event was dropped (a ``DropReason`` or a source's own)."""

    @classmethod
    def dropped(cls, reason: str, event: Event | None = None, **fields: Any) -> Decision:
        return cls(DecisionKind.DROPPED, event, reason=reason, **fields)

    @property
    def decision(self) -> str:
        """The decision as JSON and the logs show it: the kind, ``dropped:<reason>`` for a drop."""
        if self.kind is DecisionKind.DROPPED:
            return f"{self.kind}:{self.reason}"
        return self.kind

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "event": None if self.event is None else self.event.model_dump(mode="json"),
            "hook": self.hook,
            "agent": self.agent,
            "prompt": self.prompt,
            "key": self.key,
            "task_id": self.task_id or None,
            "detail": self.detail or None,
            "retryable": self.retryable,
        }


def parse(text: str) -> tuple[DecisionKind, str]:
    """The kind and drop reason of a decision text read back from JSON (``khook replay``
    output): the one inverse of ``Decision.decision``.

    Raises:
        ValueError: ``text`` is no decision.
    """
    kind, sep, reason = text.partition(":")
    if sep and kind == DecisionKind.DROPPED:
        return DecisionKind.DROPPED, reason
    return DecisionKind(text), ""
