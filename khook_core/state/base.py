"""The state store contracts: dedup claims, the audit log, storm control's counters, backlogs.

Four narrow protocols (``ClaimStore``, ``AuditLog``, ``LimitStore``, ``BacklogStore``); one
backend implements all four (``StateStore``), and each caller depends only on the one it uses.
A new backend is written from the docstrings below and proven by the four contract suites
(``tests/integration/state/``), which run every backend through the same assertions.

Rules every method keeps:

- **Atomic across every caller sharing the store.** ``claim`` is the only thing standing
  between a redelivered event and a second agent run; the budget primitives (``take_slot``,
  ``acquire_lease``) and the backlogs hold across function instances only because the store
  enforces them. "Every caller" means every process and instance on one database (memory: the
  threads of one process). A read-modify-write must be one transaction, one conditional
  statement, or a write with a precondition on what was read, retried on conflict.
- **"now" is the caller's.** Expiries, windows, leases and cool-downs are compared with the
  ``now`` passed in (timezone-aware; a replay moves it), never with the store's or the
  database's clock. A stored time is ``now`` plus a duration given in the same call.
- **Errors are ``TransientError``.** Any failure of the backend (connection, lock timeout,
  contention that outlasted the store's own retries) leaves the method as ``TransientError``
  with the driver's exception chained (``raise ... from exc``); the caller releases and lets
  the event be redelivered. A call that raised may still have taken effect, so writes are
  safe to repeat: a store that retries internally recognises its own landed write (a per-call
  token) rather than reading it as someone else's.
- **Keys are opaque text**, any string (``/``, non-ASCII, unpaired surrogates): a backend that
  cannot store one as given maps it (Firestore hashes it into a document id, SQLite escapes
  surrogates) without ever mixing two keys up.
- **Arguments are keyword-only** (except ``AuditLog.record``'s one record).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

from khook_core import lazyexports
from khook_core.storm.records import BacklogKey
from khook_core.storm.records import DedupKey as DedupKey

if TYPE_CHECKING:
    from khook_core.state.records import APPROVAL_OPEN as APPROVAL_OPEN
    from khook_core.state.records import ApprovalRecord as ApprovalRecord
    from khook_core.state.records import CircuitRecord as CircuitRecord
    from khook_core.state.records import ConfigSnapshot as ConfigSnapshot
    from khook_core.state.records import FiringCount as FiringCount
    from khook_core.state.records import FiringFilter as FiringFilter
    from khook_core.state.records import FiringPage as FiringPage
    from khook_core.state.records import Incident as Incident
    from khook_core.state.records import SilenceRecord as SilenceRecord
    from khook_core.storm.backlogs import Backlog

_RECORDS = frozenset(
    {
        "APPROVAL_OPEN",
        "ApprovalRecord",
        "CircuitRecord",
        "ConfigSnapshot",
        "FiringCount",
        "FiringFilter",
        "FiringPage",
        "Incident",
        "SilenceRecord",
    }
)
"""The records defined in ``state/records.py`` and exported from here on first use."""


__getattr__ = lazyexports.forwarding(__name__, "khook_core.state.records", _RECORDS)


CircuitState = Literal["closed", "open", "half-open"]

ClaimResult = Literal["won", "resumed", "uncertain", "busy", "held"]
"""What ``claim_firing`` found (see ``StateStore.claim_firing``)."""

CLAIMED = "claimed"
"""The outcome of a claim nobody has confirmed yet."""
UNCERTAIN = "uncertain"
"""The outcome of a claim whose send may have reached the agent (a read timeout)."""

DEFAULT_DEDUP_WINDOW = timedelta(minutes=10)
"""khook's suppression window; per hook configurable through ``dedupWindow``."""


def circuit_state_of(open_until: datetime | None, now: datetime) -> CircuitState:
    """The state of a circuit from when its cool-down ends (None: never opened, or closed)."""
    if open_until is None:
        return "closed"
    return "open" if open_until > now else "half-open"


def window_start(now: datetime, window: timedelta) -> float:
    """The start (epoch seconds) of the fixed, clock-aligned window containing ``now``."""
    size = window.total_seconds()
    return (now.timestamp() // size) * size


class HeldClaim(NamedTuple):
    """A live claim as stored, for deciding what a claimer with ``owner`` may do with it.

    A named tuple rather than a frozen dataclass: the memory store builds one per claim, and
    tuple construction is several times cheaper in a storm.
    """

    owner: str
    outcome: str
    claimed_at: datetime
    unsure: bool = False
    """A send of this claim may have reached the agent (set with ``UNCERTAIN``, kept until
    the claim ends), so whoever resumes it asks the agent before sending again."""


def resume_result(
    held: HeldClaim, owner: str, now: datetime, stale_after: timedelta
) -> ClaimResult:
    """What a live claim means to the claimer ``owner``; one rule for every store.

    Another owner's claim, or one of ours already confirmed (dispatched, coalesced, refused …),
    is ``held``: a duplicate. Ours marked ``uncertain`` is resumed at once (its attempt has
    ended). Ours still ``claimed`` is an earlier attempt of this same delivery that never
    reported back: ``busy`` while it may still be running (claimed less than ``stale_after``
    ago, the invocation budget), then ``resumed`` (``uncertain`` if a send may have landed).
    """
    if held.owner != owner:
        return "held"
    if held.outcome == UNCERTAIN:
        return "uncertain"
    if held.outcome != CLAIMED:
        return "held"
    if held.claimed_at + stale_after > now:
        return "busy"
    return "uncertain" if held.unsure else "resumed"


@dataclass(frozen=True)
class Firing:
    """One audit record: what fired (or was refused), when, where it went and how it ended."""

    key: DedupKey
    hook: str  # namespace/name
    event_id: str
    event_type: str
    source: str
    resource: str  # namespace/kind/name
    agent: str  # namespace/name, URL or webhook target
    prompt_hash: str
    outcome: str  # dispatched | failed:<why> | released | resolved ...
    at: datetime
    task_id: str = ""
    error: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    config_version: str = ""  # the configuration that decided it (``Config.version``)
    task_state: str = ""  # the agent task's state (``TASK_STATES``) when this was recorded
    finding: str = ""  # the agent's final text, cleaned and capped (``tracking.finding``)
    finding_chars: str = ""  # the final text's full length (text: audit fields are text)
    finished_at: str = ""  # when the task was seen ended, RFC 3339
    tokens: str = ""  # total tokens the agent reported for the task
    incident: str = ""  # the incident it opened or joined (``IncidentStore``), if correlated

    @classmethod
    def trusted(
        cls,
        *,
        key: DedupKey,
        hook: str,
        event_id: str,
        event_type: str,
        source: str,
        resource: str,
        agent: str,
        prompt_hash: str,
        outcome: str,
        at: datetime,
        task_id: str = "",
        error: str = "",
        extra: dict[str, str] | None = None,
        config_version: str = "",
        task_state: str = "",
        finding: str = "",
        finding_chars: str = "",
        finished_at: str = "",
        tokens: str = "",
        incident: str = "",
    ) -> Firing:
        """The record the constructor builds from the same fields, built with one write of its
        ``__dict__`` instead of a frozen dataclass's ``object.__setattr__`` per field: every
        firing writes one. Its parameters are the fields, in order (an unknown or missing one
        is refused as the constructor refuses it); a test holds the two equal."""
        new = _new(cls)
        _set(
            new,
            "__dict__",
            {
                "key": key,
                "hook": hook,
                "event_id": event_id,
                "event_type": event_type,
                "source": source,
                "resource": resource,
                "agent": agent,
                "prompt_hash": prompt_hash,
                "outcome": outcome,
                "at": at,
                "task_id": task_id,
                "error": error,
                "extra": {} if extra is None else extra,
                "config_version": config_version,
                "task_state": task_state,
                "finding": finding,
                "finding_chars": finding_chars,
                "finished_at": finished_at,
                "tokens": tokens,
                "incident": incident,
            },
        )
        return new


_new = object.__new__
_set = object.__setattr__


class ClaimStore(Protocol):
    """Dedup claims: what stands between a redelivered event and a second agent run.

    A claim lives from ``now`` until ``now + ttl`` of the call that took it; at or after that
    instant it is expired and may be taken again. Storing expired claims is allowed (purge or
    TTL them at leisure): they must only never count.
    """

    def claim(self, *, key: DedupKey, ttl: timedelta, now: datetime) -> bool:
        """Take ``key`` until ``now + ttl`` unless a live claim holds it.

        Returns:
            True for exactly one of any number of concurrent callers while the key is free or
            its claim expired (taking over an expired claim is just as exclusive); False while
            a claim is live. A plain claim has no owner, so ``claim_firing`` on its key is
            ``held`` until it expires.
        """
        ...

    def claim_firing(
        self, *, key: DedupKey, owner: str, ttl: timedelta, now: datetime, stale_after: timedelta
    ) -> ClaimResult:
        """Claim ``key`` for a firing, idempotently for one delivery.

        ``owner`` is derived from what a redelivery carries again (the Pub/Sub message id, the
        sender's delivery id, else the dedup key and event id), so the redelivery of an attempt
        whose outcome was lost (a write that landed but whose reply never came, a release that
        failed) recognises its own claim instead of calling it a duplicate:

        - ``won``: a new claim (or an expired one taken over);
        - ``held``: someone else's live claim, or ours already confirmed: a duplicate;
        - ``busy``: ours, unconfirmed and younger than ``stale_after``: the earlier attempt may
          still be running, retry later;
        - ``resumed``: ours, unconfirmed and stale: taken over (``claimed_at`` = now), fire;
        - ``uncertain``: ours, and a send of it may have reached the agent: taken over, ask the
          agent before sending again.

        Taking over is atomic: of two concurrent redeliveries exactly one resumes, the other
        sees a fresh claim (``busy``). A write whose reply is lost is read back in the store's
        own retries and recognised by a per-call token.
        """
        ...

    def mark_uncertain(self, *, key: DedupKey) -> None:
        """The send of this claim may have reached the agent: keep the claim (no release), and
        let the redelivery resume it at once, asking the agent first (``uncertain``).

        The mark stays until the claim ends, through later resumes. No claim: nothing happens
        (no error, no claim created). Idempotent.
        """
        ...

    def release(self, *, key: DedupKey) -> None:
        """Give ``key`` back (after a failed dispatch or a resolved alert): the next ``claim``
        or ``claim_firing`` wins at once, whatever its ``now``. Idempotent; releasing a key
        nobody claimed is no error."""
        ...

    def confirm(self, *, key: DedupKey, outcome: str, task_id: str = "") -> None:
        """Record how a claimed firing ended (``dispatched``, ``coalesced`` …, and the agent's
        task id); from then on even its owner's ``claim_firing`` is ``held``.

        The claim keeps its expiry (confirming never extends it). No claim (released, expired
        and purged): nothing happens, no error, no claim created. Idempotent.
        """
        ...


class AuditLog(Protocol):
    """The audit trail of firings: appended by the pipeline, read by the CLI and the console.

    A store keeps every field of ``Firing`` through ``state.audit_fields`` (the one field
    list), so a field added to the record is stored and read back by every backend without
    further edits. A store may bound retention (memory keeps the newest ``MAX_FIRINGS``,
    Firestore sets ``expire_at`` for an optional TTL policy).
    """

    def record(self, firing: Firing) -> None:
        """Append ``firing``. Never deduplicates: two equal records are two records."""
        ...

    def firings(
        self, *, hook: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[Firing]:
        """Up to ``limit`` records, newest ``at`` first (the order of equal times is free).

        Args:
            hook: only this hook's records (``namespace/name``, exact match).
            since: only records with ``at >= since``.
            limit: at most this many (``0``: none).

        Returns:
            Records equal to those written: every field, ``at`` a plain timezone-aware
            ``datetime`` of the same instant (whole microseconds are kept).
        """
        ...


class LimitStore(Protocol):
    """Storm control's shared counters: rate-limit slots, run leases and circuit breakers.

    Each errs towards fewer agent runs, never more: a count a retried write may have doubled
    is acceptable, a count that lets one run too many is not.
    """

    def take_slot(self, *, key: str, limit: int, window: timedelta, now: datetime) -> bool:
        """Count one use of ``key`` in the current fixed window; False once ``limit`` is reached.

        Windows are aligned to the clock (``now`` floored to a multiple of ``window``, see
        ``window_start``), and a new window starts with the whole ``limit``. Across all
        callers at most ``limit`` calls per key and window return True; ``limit <= 0`` is
        always False. A call whose window is older than one already counted for ``key`` (a
        clock behind another instance's) never reopens it: memory and SQLite keep one window
        per key and refuse the call, Firestore counts each window in a document of its own.
        """
        ...

    def return_slot(self, *, key: str, window: timedelta, now: datetime) -> None:
        """Give back one use taken with the same ``key``, ``window`` and ``now`` (the run did
        not start after all). Never below zero; a window already over is left alone; a key
        never counted is no error."""
        ...

    def acquire_lease(self, *, scope: str, cap: int, ttl: timedelta, now: datetime) -> str | None:
        """Take one of ``cap`` leases of ``scope``, lapsing at ``now + ttl``.

        Returns:
            A lease id unique among the scope's live leases (pass it to ``release_lease``),
            or None when ``cap`` leases are live (``cap <= 0``: always None). Across all
            callers at most ``cap`` leases of a scope are live at any ``now``; each lapses on
            its own. Scopes are independent.
        """
        ...

    def release_lease(self, *, scope: str, lease: str) -> None:
        """Give back a lease ``acquire_lease`` returned, unless it lapsed and was retaken: a
        release frees only its own lease, never a later holder's. Idempotent."""
        ...

    def record_failure(
        self, *, key: str, threshold: int, cool_down: timedelta, now: datetime
    ) -> bool:
        """Count a consecutive failure of ``key`` (atomically: concurrent failures all count).

        Returns:
            True when the count has reached ``threshold``: the circuit is then open until
            ``now + cool_down`` (a failed half-open probe re-opens it the same way).
        """
        ...

    def record_success(self, *, key: str) -> None:
        """Close the circuit of ``key`` and reset its failure count. Idempotent."""
        ...

    def circuit_state(self, *, key: str, now: datetime) -> CircuitState:
        """``open`` during the cool-down, ``half-open`` after it until a success closes the
        circuit (or a failure re-opens it), else ``closed``."""
        ...


class BacklogStore(Protocol):
    """What storm control held back, summarised per key until a run (or the sweep) takes it.

    Backlogs are merged with ``Backlog.merge`` (counts add up, the latest event is kept), so
    a backend stores the merged record, never a list of adds. Of concurrent adds to one key
    none is lost; of concurrent takes exactly one gets the backlog.

    A backend indexes a backlog by ``key.stored`` and keeps ``key.kind`` and ``key.name``
    beside it, so ``backlog_keys`` hands back typed keys without reading the string."""

    def add_backlog(self, *, key: BacklogKey, backlog: Backlog) -> None:
        """Merge ``backlog`` into the backlog of ``key`` (atomically)."""
        ...

    def take_backlog(self, *, key: BacklogKey) -> Backlog | None:
        """Return and clear the backlog of ``key`` (atomically)."""
        ...

    def backlog_keys(self, *, limit: int) -> list[BacklogKey]:
        """Up to ``limit`` keys whose backlog holds events (the sweep's work list)."""
        ...


# -- the read side: what the console asks of a store ----------------------------------------


class InvalidCursorError(ValueError):
    """A page cursor this store did not hand out (or from another store or version)."""


def encode_cursor(*values: object) -> str:
    """A page cursor: the ordering values of the last record returned, as opaque text.

    Cursors carry the position, not an offset, so records written while a client pages through
    (newer ones go to the front) shift nothing: each older record is returned exactly once.
    """
    text = json.dumps(list(values), separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kinds: tuple[type, ...]) -> list[Any]:
    """Inverse of ``encode_cursor``, checking each value's type.

    Raises:
        InvalidCursorError: the text is not a cursor of this shape.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursorError(f"cursor {cursor[:40]!r} is not a cursor this API issued") from exc
    if (
        not isinstance(values, list)
        or len(values) != len(kinds)
        or not all(
            isinstance(v, kind) and not isinstance(v, bool)
            for v, kind in zip(values, kinds, strict=True)
        )
    ):
        raise InvalidCursorError(f"cursor {cursor[:40]!r} is not a cursor this API issued")
    return values


def bucket_start(at: datetime, bucket: timedelta) -> datetime:
    """``at`` floored to a multiple of ``bucket`` since the epoch (UTC)."""
    size = bucket.total_seconds()
    return datetime.fromtimestamp((at.timestamp() // size) * size, UTC)


class AuditQueries(Protocol):
    """The console's read side: filtered, paged and counted audit records, backlogs, circuits.

    Read-only and safe beside every writer; what a store cannot do in one query (Firestore
    has no GROUP BY) it does by streaming only the fields it needs.
    """

    def query_firings(
        self, *, where: FiringFilter, cursor: str | None = None, limit: int = 100
    ) -> FiringPage:
        """Up to ``limit`` records matching ``where``, newest ``at`` first, ties in a fixed
        order of the store's own (insertion order, newest first, or a document id).

        Args:
            cursor: the ``FiringPage.cursor`` of the previous page: the records after it.

        Raises:
            InvalidCursorError: ``cursor`` is not one this store issued.
        """
        ...

    def count_firings(self, *, where: FiringFilter, bucket: timedelta) -> list[FiringCount]:
        """Records matching ``where`` counted per ``bucket_start`` and hook, source, event type
        and outcome; only non-zero counts, ordered by bucket, then the text fields."""
        ...

    def backlogs(self, *, limit: int) -> list[tuple[BacklogKey, Backlog]]:
        """Up to ``limit`` backlogs holding events, with their keys, ordered by stored key."""
        ...

    def circuits(self, *, now: datetime, limit: int) -> list[CircuitRecord]:
        """Up to ``limit`` circuits with a failure counted or a cool-down set, ordered by key."""
        ...


class GateStore(ClaimStore, LimitStore, Protocol):
    """What storm control's gates use: claims (windows, probes) and counters (slots, leases,
    circuits)."""


class StateStore(ClaimStore, AuditLog, LimitStore, BacklogStore, AuditQueries, Protocol):
    """All four contracts and the console's reads in one backend (memory, SQLite, Firestore),
    plus its cleanup.

    Callers depend on the narrow contract they use; only the runtime that opens and closes
    the store holds the whole of it.
    """

    def close(self) -> None:
        """Release connections and files; the store is not used afterwards."""
        ...


class ConfigStore(Protocol):
    """The live configuration: versioned snapshots every function reloads (the fifth contract).

    Kept apart from ``StateStore``: the snapshot is read by the reloader once an interval, on a
    handle of its own, never on the firing path; a store opens it with ``open_config_store``.
    Publishing is atomic across every caller: concurrent publishers get distinct versions and
    the latest version is the one readers see; a publish with ``expect`` writes only if the
    current version is still ``expect`` (the bootstrap: ``expect=0``, exactly one wins).
    """

    def config_version(self) -> int:
        """The current version (0: nothing published). One small read: functions call it once
        per refresh interval, so it never fetches the files."""
        ...

    def read_config(self) -> ConfigSnapshot | None:
        """The current snapshot, every file as published; None when nothing is."""
        ...

    def publish_config(
        self,
        *,
        files: dict[str, str],
        origin: str,
        hooks: int,
        digest: str,
        now: datetime,
        expect: int | None = None,
    ) -> int | None:
        """Store a new snapshot as the current version plus one.

        Returns:
            The new version; None when ``expect`` is given and the current version is not
            ``expect`` (nothing written).
        """
        ...

    def close(self) -> None:
        """Release the handle; it is not used afterwards."""
        ...


# -- tracked agent tasks (the seventh contract) -------------------------------------------

TASK_STATES = (
    "submitted",
    "working",
    "input-required",
    "auth-required",
    "completed",
    "failed",
    "rejected",
    "canceled",
    "timed-out",
    "unknown",
)
"""Every ``TrackedTask.state``: A2A's states (normalised, ``TASK_STATE_`` dropped), khook's
``timed-out`` (the deadline passed first) and ``unknown`` (the agent no longer knows the task)."""
TERMINAL_TASK_STATES = frozenset({"completed", "failed", "rejected", "canceled", "timed-out"})
"""States after which a task is no longer followed."""
NEVER = datetime(9999, 1, 1, tzinfo=UTC)
"""``TrackedTask.next_check`` of a finished task: one ordered field is the tracker's work list
(a range scan on one single-field index in every store, no composite index)."""


@dataclass(frozen=True)
class TrackedTask:
    """An agent task followed after its dispatch until it ends (``khook_core.tracking``).

    Keyed by ``ref`` (the agent's endpoint and its task id); ``version`` counts the writes of
    the stored task and is the precondition of every update, so one transition is written once
    however many ticks or notifications race for it.
    """

    task_id: str
    endpoint: str  # the A2A URL the task lives at
    wire: str  # "1.0" or "0.3": how to ask about it
    context_id: str
    key: DedupKey  # the firing's dedup key
    hook: str
    event_id: str
    event_type: str
    source: str
    resource: str
    agent: str
    state: str
    created_at: datetime
    deadline: datetime  # after this instant, an open task is ``timed-out``
    next_check: datetime  # when the tracker asks the agent next (``NEVER`` once finished)
    checks: int = 0  # the agent asked so far (the backoff's exponent)
    cancel: bool = False  # cancel the task at the agent when its deadline passes
    push_token_hash: str = ""  # sha256 hex of the task's push-notification token ("": none)
    finding: str = ""  # the agent's final text, capped
    finding_chars: int = 0  # the final text's full length
    tokens: str = ""  # token usage the agent reported ("" when it reported none)
    finished_at: datetime | None = None
    version: int = 0  # set by the store
    reply_to: str = ""  # where a GitHub or PagerDuty event came from (``reporting.*.reply_target``)
    approval_deadline_s: int = 0  # how long a pause of it stays open (0: the setting's)

    @property
    def ref(self) -> str:
        """The store key: endpoint and task id (two agents may hand out the same id)."""
        return f"{self.endpoint} {self.task_id}"

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_TASK_STATES


class TaskStore(Protocol):
    """Agent tasks followed after dispatch (``TrackedTask``): the tracker's work list.

    Kept apart from ``StateStore`` (a handle of its own, ``open_task_store``): the firing path
    writes one task per dispatch, and only the sweep's tick and the push endpoint read it.
    Every write is conditional on the version read, so of concurrent writers of one task
    exactly one succeeds; a finished task is never changed again.
    """

    def track_task(self, *, task: TrackedTask) -> bool:
        """Store ``task`` (version 1) unless a task of its ``ref`` is stored; True if stored.

        A redelivered dispatch tracks the same task again: that is no error and changes nothing.
        """
        ...

    def due_tasks(self, *, now: datetime, limit: int, lease: timedelta) -> list[TrackedTask]:
        """Up to ``limit`` unfinished tasks whose ``next_check <= now``, earliest first, each
        leased to this caller: its ``next_check`` moved to ``now + lease`` (version + 1) in the
        same atomic step, so concurrent callers get disjoint tasks, and a caller that dies
        leaves them due again once the lease lapses. Returned tasks carry the new version."""
        ...

    def update_task(self, *, task: TrackedTask, expect: int) -> bool:
        """Replace the stored task of ``task.ref`` if its version is ``expect`` (it becomes
        ``expect + 1``); False (nothing written) if it changed since, is finished, or is not
        stored."""
        ...

    def read_task(self, *, ref: str) -> TrackedTask | None:
        """The stored task of ``ref`` (with its version), or None."""
        ...

    def close(self) -> None:
        """Release the handle; it is not used afterwards."""
        ...


# --- Silences (``khook silence``): the sixth contract ------------------------------------------


class SilenceStore(Protocol):
    """Silences every function honours (the sixth contract): add, list, expire.

    Kept apart from ``StateStore`` like ``ConfigStore``: functions read the active silences
    once an interval on a handle of their own (``open_silence_store``), never per event.
    ``add_silence`` is create-if-absent by id, atomic across every caller: of two processes
    adding one silence exactly one creates it and both get the stored record back.
    """

    def add_silence(self, *, silence: SilenceRecord) -> tuple[SilenceRecord, bool]:
        """Store ``silence`` unless its id exists. Returns the stored record and whether this
        call created it."""
        ...

    def get_silence(self, *, id: str) -> SilenceRecord | None:
        """The silence ``id`` as stored (ended or not), or None."""
        ...

    def silences(self, *, now: datetime, include_expired: bool, limit: int) -> list[SilenceRecord]:
        """Silences not yet ended at ``now`` (and, with ``include_expired``, ended ones too),
        the latest ending first."""
        ...

    def expire_silence(self, *, id: str, now: datetime, by: str) -> SilenceRecord | None:
        """End the silence at ``now`` (no-op when it already ended); None when unknown."""
        ...

    def close(self) -> None:
        """Release the handle; it is not used afterwards."""
        ...


# --- incidents ---------------------------------------------------------------------------------


class Correlation(NamedTuple):
    """What ``IncidentStore.correlate`` did with one event (a tuple: one is built per
    correlated event in a storm)."""

    incident: Incident
    opened: bool
    """True: this event opened the incident (start the one agent run)."""
    duplicate: bool = False
    """True: this member had joined before (a redelivery); nothing changed."""


Evidence = str | Callable[[], str]
"""A joining event's line for the next follow-up, or a function making it: called only when
the line is kept (``pending`` has room), which spares a storm's thousandth repeat the text."""


class IncidentStore(Protocol):
    """Incidents: one open incident per workload, opened atomically across every instance.

    Kept apart from ``StateStore`` (opened with ``open_incident_store``) like ``ConfigStore``.
    Every change of a workload's incident is one atomic read-modify-write of that workload's
    current incident, so concurrent events of one workload open exactly one incident.
    """

    def correlate(
        self,
        *,
        workload: str,
        member: str,
        window: timedelta,
        now: datetime,
        hook: str = "",
        agent: str = "",
        resolvable: bool = False,
        evidence: Evidence = "",
        join_only: bool = False,
    ) -> Correlation | None:
        """Join the workload's open incident if its last event is within ``window`` of ``now``,
        else open a new one (closing a stale one as ``quiet``). A joining event's ``evidence``
        is queued for the next follow-up; ``resolvable`` members are tracked until resolved.
        With ``join_only`` nothing is opened: None when there is no incident to join (and
        only then is the result None)."""
        ...

    def resolve(self, *, workload: str, member: str, now: datetime) -> Incident | None:
        """Mark a member resolved; close the incident (``resolved``) once every tracked member
        is. None when the workload has no open incident with that member."""
        ...

    def take_follow_up(
        self, *, workload: str, interval: timedelta, now: datetime
    ) -> tuple[Incident, tuple[str, ...]] | None:
        """The queued evidence of the workload's open incident, taken (cleared) when some is
        queued and the last follow-up is at least ``interval`` old, with a last line counting
        the events past the cap; None otherwise."""
        ...

    def requeue_follow_up(
        self, *, workload: str, incident: str, evidence: tuple[str, ...], sent: int
    ) -> Incident | None:
        """Put back the evidence of follow-up number ``sent`` of ``incident`` that could not be
        sent, ahead of what joined since, for the next interval (the interval still counts
        from the failed attempt). None when the incident closed or was replaced since."""
        ...

    def close_quiet(self, *, now: datetime, limit: int) -> list[Incident]:
        """Close (``quiet``) open incidents whose last event is older than their window."""
        ...

    def incidents(
        self, *, open_only: bool = False, workload: str | None = None, limit: int = 100
    ) -> list[Incident]:
        """Incidents, the most recently opened first."""
        ...

    def close(self) -> None:
        """Release the handle; it is not used afterwards."""
        ...


# --- Approvals (``khook approvals``): a person answers an agent's paused task ----------------


class ApprovalStore(Protocol):
    """Approvals: opened by the tracker, decided by a person or the sweep's deadline. Every
    change is conditional on the version read, so of two people deciding one approval exactly
    one decision is stored (and only that one is sent)."""

    def open_approval(self, *, approval: ApprovalRecord) -> tuple[ApprovalRecord, bool]:
        """Store ``approval`` (version 1) unless its id exists; the stored record and whether
        this call created it (the tracker sees one paused task on many ticks)."""
        ...

    def get_approval(self, *, id: str) -> ApprovalRecord | None:
        """The approval ``id`` with its version, or None."""
        ...

    def approvals(self, *, open_only: bool, limit: int) -> list[ApprovalRecord]:
        """Approvals, the latest opened first (only the open ones with ``open_only``)."""
        ...

    def due_approvals(self, *, now: datetime, limit: int) -> list[ApprovalRecord]:
        """Open approvals whose deadline is at or before ``now``, the earliest first."""
        ...

    def update_approval(self, *, approval: ApprovalRecord, expect: int) -> bool:
        """Replace the stored approval if its version is ``expect`` (it becomes ``expect + 1``);
        False (nothing written) when it changed since or is not stored."""
        ...

    def close(self) -> None:
        """Release the handle; it is not used afterwards."""
        ...
