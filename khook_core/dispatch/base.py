"""The dispatcher contract: deliver a rendered prompt to the hook's target.

A dispatcher raises ``TransientError`` for failures worth retrying (the pipeline releases the
claim and the transport redelivers), ``OutcomeUnknownError`` for a send that may have arrived
(the pipeline keeps the claim, marked uncertain, and the retry comes with ``verify``) and
``DispatchError`` for permanent refusals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal, Protocol

from khook_core.target import Target, redact_url

if TYPE_CHECKING:
    from collections.abc import Mapping

    from khook_core.event import Event
    from khook_core.state.base import DedupKey

__all__ = [
    "DispatchRequest",
    "DispatchResult",
    "Dispatcher",
    "Recovered",
    "Target",  # defined in khook_core.target, below the hooks that build it
    "redact_url",
]


@dataclass(frozen=True)
class DispatchRequest:
    """Everything a dispatcher needs; ``message_id`` derives from the dedup key."""

    event: Event
    hook: str  # namespace/name
    target: Target
    prompt: str
    key: DedupKey
    message_id: str
    context_id: str
    time_budget: float | None = None
    """Seconds this dispatch may take at most, retries included (what is left of the function
    invocation); None: only the dispatcher's own ``KHOOK_DISPATCH_BUDGET`` applies."""
    verify: bool = False
    """An earlier attempt of this firing may have reached the target (its answer never came):
    a dispatcher that can ask the target for the message does so and sends only if it has
    none; one that cannot sends, and says so in ``DispatchResult.recovered``."""
    push_url: str = ""
    """Where an A2A agent whose card advertises push notifications sends them for this task
    ("": none asked for); the dispatcher adds ``agent=<its endpoint, base64url>``."""
    push_token: str = ""
    """The task's own token, sent back in ``X-A2A-Notification-Token`` with each notification."""
    trace_headers: Mapping[str, str] = field(default_factory=dict)
    """W3C Trace Context headers (``traceparent``) to send with the call, so the target
    continues the event's trace; empty when telemetry is off."""

    @classmethod
    def trusted(
        cls,
        *,
        event: Event,
        hook: str,
        target: Target,
        prompt: str,
        key: DedupKey,
        message_id: str,
        context_id: str,
        time_budget: float | None = None,
        verify: bool = False,
        push_url: str = "",
        push_token: str = "",
    ) -> DispatchRequest:
        """The request the constructor builds from the same fields (no trace headers), with
        one write of its ``__dict__`` instead of a frozen dataclass's ``object.__setattr__``
        per field: every firing builds one. A test holds the two equal."""
        new = _new(cls)
        _set(
            new,
            "__dict__",
            {
                "event": event,
                "hook": hook,
                "target": target,
                "prompt": prompt,
                "key": key,
                "message_id": message_id,
                "context_id": context_id,
                "time_budget": time_budget,
                "verify": verify,
                "push_url": push_url,
                "push_token": push_token,
                "trace_headers": {},
            },
        )
        return new


_new = object.__new__
_set = object.__setattr__


Recovered = Literal["", "found", "sent", "unverified"]
"""How a ``verify`` request ended (see ``DispatchResult.recovered``)."""


@dataclass(frozen=True)
class DispatchResult:
    """What the target answered: a task id and state where it has them."""

    task_id: str = ""
    state: str = ""
    detail: str = ""
    recovered: Recovered = ""
    """For a ``verify`` request: ``found`` (the target already had it: nothing sent), ``sent``
    (it had none: sent now), ``unverified`` (it could not tell: sent anyway); else ""."""
    endpoint: str = ""
    """The A2A URL the task lives at ("" for a webhook): where it is followed."""
    wire: str = ""
    """The A2A wire the task was created with (``1.0`` or ``0.3``)."""
    push: bool = False
    """Push notifications were asked for (``DispatchRequest.push_url``, the card offers them)."""


class Dispatcher(Protocol):
    """Sends one request. Raises ``TransientError`` or ``DispatchError`` on failure."""

    def dispatch(self, request: DispatchRequest) -> DispatchResult: ...

    def close(self) -> None: ...


HITL_URI: Final = "https://kagent.dev/extensions/hitl/v1"
"""kagent's human-in-the-loop extension, asked for on every message and task read: without it
kagent pauses for a tool approval with a text alone, and takes no later message as the answer
(``khook_core.approvals``)."""
