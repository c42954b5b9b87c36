"""The state store's records that only the console, the CLI, live config, silences, incidents
and approvals build: split from ``state/base.py`` so a function's cold start does not create
their dataclasses (each costs its generated methods' compilation) before something uses them.

``khook_core.state.base`` still exports every one of them (its module ``__getattr__`` loads
this module on first use), so ``from khook_core.state.base import Incident`` keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Mapping

    from khook_core.state.base import CircuitState, Firing

APPROVAL_OPEN: Final = "open"


@dataclass(frozen=True)
class FiringFilter:
    """Which audit records a console query covers; every field set must match (exactly).

    ``since`` is inclusive and ``until`` exclusive, so adjacent ranges never count a record
    twice. ``outcome`` is the recorded decision as written (``dispatched``, ``coalesced``,
    ``suppressed:budget``, ``failed:…``).
    """

    since: datetime | None = None
    until: datetime | None = None
    hook: str | None = None
    source: str | None = None
    event_type: str | None = None
    resource: str | None = None
    outcome: str | None = None
    incident: str | None = None

    def equalities(self) -> dict[str, str]:
        """The text fields to match exactly, by ``Firing`` field name."""
        fields = {
            "hook": self.hook,
            "source": self.source,
            "event_type": self.event_type,
            "resource": self.resource,
            "outcome": self.outcome,
            "incident": self.incident,
        }
        return {name: value for name, value in fields.items() if value is not None}

    def matches(self, firing: Firing) -> bool:
        """The filter applied to one record (the memory store's, and any client-side check)."""
        if self.since is not None and firing.at < self.since:
            return False
        if self.until is not None and firing.at >= self.until:
            return False
        return all(getattr(firing, name) == value for name, value in self.equalities().items())


@dataclass(frozen=True)
class FiringPage:
    """One page of ``query_firings``: records newest first, and where the next page starts."""

    firings: list[Firing]
    cursor: str | None
    """Pass to the next call for the records after these; None: there are no more."""


@dataclass(frozen=True)
class FiringCount:
    """How many records of one hook, source, event type and outcome fell in one time bucket."""

    bucket: datetime
    """The bucket's start: ``at`` floored to a multiple of the bucket size (clock-aligned)."""
    hook: str
    source: str
    event_type: str
    outcome: str
    count: int


@dataclass(frozen=True)
class CircuitRecord:
    """One circuit breaker as stored: its key, consecutive failures and state at ``now``."""

    key: str
    failures: int
    state: CircuitState
    open_until: datetime | None


@dataclass(frozen=True)
class ConfigSnapshot:
    """One published configuration: the text of every file under the config directory.

    Files travel as text, not as parsed objects, so every reader validates them with the same
    loader as ``khook validate`` (a function refuses a snapshot it cannot load, and keeps the
    previous one).
    """

    version: int
    """Assigned by the store: 1 for the first snapshot, one more for each later one."""
    origin: str  # files | push | cluster
    published_at: datetime
    files: dict[str, str]  # path relative to the config directory -> text
    hooks: int  # how many hooks the publisher validated (for ``khook config show``)
    digest: str  # sha256 over the files, to tell an unchanged push from a new one


@dataclass(frozen=True)
class SilenceRecord:
    """One silence as stored: who muted what, why, and for how long.

    ``matcher`` is a CEL condition over ``event`` (validated like a hook's ``when:`` before it
    is stored); ``hook`` and ``source`` narrow it further ("" means any). A silence is active
    from ``starts_at`` (inclusive) to ``ends_at`` (exclusive); expiring it moves ``ends_at``
    to the instant it was expired, so history keeps it.
    """

    id: str
    matcher: str
    author: str
    comment: str
    starts_at: datetime
    ends_at: datetime
    created_at: datetime
    hook: str = ""  # namespace/name, "" for every hook
    source: str = ""  # "" for every source
    drop: bool = False
    """What it held back is forgotten at its end instead of summarised in one run per hook."""
    expired_by: str = ""  # who expired it early ("" while it runs its course)

    def active_at(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at


@dataclass(frozen=True)
class Incident:
    """Related events about one workload, investigated by one agent run in one conversation.

    The ``id`` is the A2A ``contextId`` of every message sent for it (for kagent, the session).
    """

    id: str
    workload: str
    """The correlation key: ``namespace/kind/name`` (``Workload.ref()``)."""
    opened_at: datetime
    last_event_at: datetime
    window: timedelta
    """An event joins while it comes within this of the last one; quiet this long, it closes."""
    hook: str = ""
    """The hook whose event opened it; its agent gets the run and every follow-up."""
    agent: str = ""
    events: int = 1
    members: Mapping[str, str] = field(default_factory=dict)
    """Member (an event occurrence) → ``firing`` or ``resolved`` for members whose source
    reports resolution (alerts), ``event`` for the rest (capped at ``MAX_INCIDENT_MEMBERS``)."""
    pending: tuple[str, ...] = ()
    """Evidence that joined since the last follow-up, oldest first (capped)."""
    omitted: int = 0
    """Events that joined since the last follow-up past the cap on ``pending``."""
    follow_ups: int = 0
    last_follow_up_at: datetime | None = None
    closed_at: datetime | None = None
    close_reason: str = ""  # "" while open | resolved | quiet

    @property
    def open(self) -> bool:
        return self.closed_at is None


@dataclass(frozen=True)
class ApprovalRecord:
    """A question an agent's task paused on (``input-required``), and, once decided, the answer.

    ``kind`` is ``tool_approval`` or ``ask_user`` (a kagent HITL v1 request, ``request`` its
    JSON text) or ``plain`` (no request khook can answer: surfaced, never decided here).
    ``state`` is ``open`` until a person (or the deadline) decides: ``approved``, ``rejected``,
    ``answered`` or ``expired`` (a plain one whose deadline passed). ``sent`` says whether the
    decision reached the agent (``sent`` or ``failed: <reason>``; "" before it was sent).
    """

    id: str
    task_ref: str
    task_id: str
    context_id: str
    endpoint: str
    wire: str
    hook: str
    key: str
    agent: str
    kind: str
    request: str
    text: str
    opened_at: datetime
    deadline: datetime
    state: str = APPROVAL_OPEN
    decision: str = ""
    decided_by: str = ""
    decided_at: datetime | None = None
    reason: str = ""
    sent: str = ""
    version: int = 0

    @property
    def is_open(self) -> bool:
        return self.state == APPROVAL_OPEN
