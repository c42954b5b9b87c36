"""Firestore state store: dedup claims and the audit trail for the cloud deployment.

Claims live in collection ``claims``, one document per dedup key, named by the SHA-256 of the
key (keys contain ``/``, which document ids must not). The claim is a document ``create()``,
which Firestore makes atomic across every instance: exactly one creator wins, the rest get
``AlreadyExists``. A claim whose ``expire_at`` has passed is taken over with an ``update()``
carrying a precondition on the ``update_time`` just read, so of several processes that see the
same expired claim exactly one succeeds. Expiry is compared by this code, never left to the TTL
policy: TTL deletion runs up to about a day late (and not at all in the emulator).

Each claim carries a random ``attempt`` token (``owner`` for a plain ``claim``), so a write that
the client library retried after a timeout (the first attempt having landed) is recognised as
ours instead of being read as "someone else holds it", which would silently drop the event. A
firing's claim (``claim_firing``) also carries the delivery's ``owner`` token, derived from what
a redelivery carries again: when even the retries ran out (a connection cut), the redelivery
recognises its own claim and resumes it (see ``StateStore.claim_firing``).

Storm-control state, each in its own collection and keyed the same way:

- ``slots`` (``take_slot``): one document per key *and* window, counted with an atomic
  ``Increment`` whose result comes back with the write, so no read-modify-write and no retry
  loop. It is read first: once a window is full, a storm only reads, it does not pile writes
  onto one document (Firestore sustains about one write a second per document).
- ``leases`` (``acquire_lease``/``release_lease``): ``cap`` documents per scope, each taken
  like a claim (``create``, or a precondition update of a lapsed one); one batched read finds
  free ones; a ``holder`` token makes sure a release only deletes its own lease.
- ``backlog`` (``add_backlog``/``take_backlog``): optimistic read-modify-write with a
  precondition on the document read; taking clears ``pending`` and empties ``summary`` and
  ``event`` (documents stay, tiny); ``backlog_keys`` queries ``pending == true``. Beside the
  stored ``key`` each document has the key's ``kind`` and ``name``; a document written before
  those fields existed is read by its ``key`` (``BacklogKey.from_stored``) until its next
  write adds them.
- ``circuits``: a failure counter (``Increment``) and ``open_until``.

TTL policies for Terraform: ``claims.expire_at``, ``slots.expire_at``, ``leases.expire_at`` and
``circuits.expire_at`` (housekeeping; the code never relies on them), and optionally
``firings.expire_at`` (audit retention, ``AUDIT_RETENTION`` after the firing) with
``firing_counts.expire_at`` (the audit trail's per-minute counters, ``audit_counts``: written
in each record's batch, expiring a minute after the last record they count).
``firings(hook=…)`` needs the composite index ``firings(hook ASC, at DESC)``. See
docs/dispatch.md.

``google.cloud.firestore`` is imported here and nowhere else; every Google error leaves this
module as ``TransientError`` with the original chained.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

from khook_core.errors import ConfigError, Problem, TransientError
from khook_core.state import audit_counts, audit_fields, base
from khook_core.state.base import DedupKey
from khook_core.storm.records import Backlog, BacklogKey, BacklogKind

T = TypeVar("T")

logger = logging.getLogger(__name__)

CLAIMS: Final = "claims"
FIRINGS: Final = "firings"
FIRING_COUNTS: Final = "firing_counts"
COUNTING_SINCE: Final = "counting-since"
"""The ``firing_counts`` document naming the first minute every record of which is counted."""
COUNTER_SHARDS: Final = 4
"""Counter documents per ten minutes: each record increments one at random, so a storm's
writes spread over several documents (Firestore sustains about one write a second on one)."""
SLOTS: Final = "slots"
LEASES: Final = "leases"
BACKLOG: Final = "backlog"
CIRCUITS: Final = "circuits"
DEFAULT_DATABASE: Final = "(default)"

CALL_TIMEOUT_S = 10.0
"""Deadline of one Firestore call including the client's own retries: a function's 60 s budget
must still hold a claim, a dispatch and the audit writes."""
COUNT_TIMEOUT_S = 50.0
"""Deadline of ``count_firings``, which streams every matching record (a busy day is tens of
thousands): most of a console request's 60 s, where the pipeline's calls keep ``timeout``."""
MAX_CLAIM_ROUNDS = 5
"""create → read → take over can lose a race to a concurrent release or take-over; each round
re-reads. Five rounds means five consecutive lost races: report contention, let it retry."""
AUDIT_RETENTION = timedelta(days=90)
"""``firings.expire_at`` = ``at`` + this, for an optional TTL policy on the audit trail."""
CIRCUIT_MEMORY = timedelta(days=1)
"""A failure count untouched this long is left to TTL deletion: "consecutive" failures a day
apart say little about the agent now."""
MAX_RMW_ROUNDS = 25
"""Read-modify-write rounds on one document before giving up as contended. A backlog document
is hot only in a storm (one write per held-back event); with jittered backoff 25 rounds cover
dozens of concurrent writers."""

INSTALL_HINT = "pip install 'khook-serverless[firestore]' (google-cloud-firestore)"


class FirestoreStateStore:
    """Claims and firings in Firestore (Native mode).

    Args:
        client: a ``google.cloud.firestore.Client``.
        timeout: deadline in seconds of each call, retries included.

    Example::

        store = FirestoreStateStore.from_url("firestore:khook")   # database "khook"
        if store.claim(key=key, ttl=timedelta(minutes=10), now=utcnow()):
            ...
    """

    def __init__(
        self,
        client: Any,
        *,
        timeout: float = CALL_TIMEOUT_S,
        audit_retention: timedelta = AUDIT_RETENTION,
    ) -> None:
        from google.api_core import exceptions as gexc
        from google.api_core import retry as gretry
        from google.cloud import firestore

        self._client = client
        self._firestore = firestore
        self._gexc = gexc
        self.project: str = client.project
        self.database: str = getattr(client, "_database", None) or DEFAULT_DATABASE
        self.timeout = timeout
        self.audit_retention = audit_retention
        self._claims = client.collection(CLAIMS)
        self._firings = client.collection(FIRINGS)
        self._counts = client.collection(FIRING_COUNTS)
        self._counting_marked = False
        self._counted_from: datetime | None = None
        self._slots = client.collection(SLOTS)
        self._leases = client.collection(LEASES)
        self._backlog = client.collection(BACKLOG)
        self._circuits = client.collection(CIRCUITS)
        # The library's default retry deadline is 60-600 s; a function cannot wait that long.
        self._retry = gretry.Retry(
            predicate=gretry.if_exception_type(
                gexc.ServiceUnavailable, gexc.InternalServerError, gexc.DeadlineExceeded
            ),
            initial=0.05,
            maximum=1.0,
            multiplier=2.0,
            timeout=timeout,
        )

    @classmethod
    def from_url(cls, url: str, *, project: str | None = None) -> FirestoreStateStore:
        """``firestore`` (database ``(default)``) or ``firestore:<database>``.

        ``project`` is the settings' (``GOOGLE_CLOUD_PROJECT``, ``demo-khook`` under the
        emulator: ``FirestoreSettings.project_id()``); None leaves it to the credentials.

        Raises:
            ConfigError: the client library is missing or no credentials/project are found.
            TransientError: the client could not be created for another reason.
        """
        database = url.partition(":")[2] or DEFAULT_DATABASE
        try:
            from google.auth import exceptions as auth_exc
            from google.cloud import firestore
        except ImportError as exc:
            raise ConfigError(
                [Problem("KHOOK_STATE", None, f"state store {url!r} needs {INSTALL_HINT}")]
            ) from exc
        try:
            client = firestore.Client(project=project, database=database)
        except auth_exc.DefaultCredentialsError as exc:
            raise ConfigError(
                [
                    Problem(
                        "KHOOK_STATE",
                        None,
                        f"state store {url!r}: no Google credentials or project ({exc}); set "
                        "GOOGLE_CLOUD_PROJECT and run on Cloud Run with a service account, or "
                        "`gcloud auth application-default login`, or set FIRESTORE_EMULATOR_HOST",
                    )
                ]
            ) from exc
        except Exception as exc:
            raise TransientError(
                f"cannot create Firestore client for {url!r} (project {project!r}): {exc}"
            ) from exc
        return cls(client)

    # -- claims -------------------------------------------------------------------------------

    @staticmethod
    def doc_id(key: str) -> str:
        """Document id of a claim: keys hold ``/``, ids must not."""
        return hashlib.sha256(key.encode()).hexdigest()

    def claim(self, *, key: DedupKey, ttl: timedelta, now: datetime) -> bool:
        ref = self._claims.document(self.doc_id(key))
        owner = uuid.uuid4().hex
        data = _claim_document(key, owner, now, ttl)
        gexc = self._gexc
        with self._wrap("claim", key):
            for _ in range(MAX_CLAIM_ROUNDS):
                try:
                    ref.create(data, retry=self._retry, timeout=self.timeout)
                    return True
                except gexc.AlreadyExists:
                    pass
                snap = ref.get(retry=self._retry, timeout=self.timeout)
                if not snap.exists:  # released between our create and read: try again
                    continue
                held = snap.to_dict() or {}
                if held.get("owner") == owner:  # a retried write of ours had landed
                    return True
                expire_at = held.get("expire_at")
                if isinstance(expire_at, datetime) and expire_at > now:
                    return False
                if self._update_unchanged(ref, snap, data):  # expired: take it over
                    return True
        raise _claim_contended(key)

    def claim_firing(
        self, *, key: DedupKey, owner: str, ttl: timedelta, now: datetime, stale_after: timedelta
    ) -> base.ClaimResult:
        ref = self._claims.document(self.doc_id(key))
        attempt = uuid.uuid4().hex
        fresh = _claim_document(key, owner, now, ttl, attempt=attempt, unsure=False)
        gexc = self._gexc
        taking: base.ClaimResult = "won"  # what the write this call sent means, once it landed
        with self._wrap("claim", key):
            for _ in range(MAX_CLAIM_ROUNDS):
                unknown: Exception | None = None
                try:
                    ref.create(fresh, retry=self._retry, timeout=self.timeout)
                    return "won"
                except gexc.AlreadyExists:
                    pass
                except gexc.GoogleAPIError as exc:  # retries ran out: did the create land?
                    unknown = exc
                snap = ref.get(retry=self._retry, timeout=self.timeout)  # read it back
                if not snap.exists:
                    if unknown is not None:  # it did not: nothing claimed, retry later
                        raise unknown
                    continue  # released between our create and read: try again
                held = snap.to_dict() or {}
                if held.get("attempt") == attempt:  # a retried write of this call had landed
                    return taking
                expire_at = held.get("expire_at")
                if isinstance(expire_at, datetime) and expire_at > now:
                    claimed_at = held.get("claimed_at")
                    result = base.resume_result(
                        base.HeldClaim(
                            str(held.get("owner", "")),
                            str(held.get("outcome", base.CLAIMED)),
                            claimed_at if isinstance(claimed_at, datetime) else now,
                            bool(held.get("unsure")),
                        ),
                        owner,
                        now,
                        stale_after,
                    )
                    if result not in ("resumed", "uncertain"):
                        return result
                    change: dict[str, Any] = {
                        "claimed_at": now,
                        "outcome": base.CLAIMED,
                        "attempt": attempt,
                    }
                else:
                    result, change = "won", fresh
                taking = result
                if self._update_unchanged(ref, snap, change):
                    return result
        raise _claim_contended(key)

    def _update_unchanged(self, ref: Any, snap: Any, fields: dict[str, Any]) -> bool:
        """Write ``fields`` unless someone changed the document since ``snap`` was read (or
        deleted it): False then, and the caller reads it again."""
        try:
            ref.update(
                fields,
                option=self._client.write_option(last_update_time=snap.update_time),
                retry=self._retry,
                timeout=self.timeout,
            )
        except (self._gexc.FailedPrecondition, self._gexc.NotFound):
            return False
        return True

    def mark_uncertain(self, *, key: DedupKey) -> None:
        with self._wrap("mark uncertain", key):
            try:
                self._claims.document(self.doc_id(key)).update(
                    {"outcome": base.UNCERTAIN, "unsure": True},
                    retry=self._retry,
                    timeout=self.timeout,
                )
            except self._gexc.NotFound:  # expired and deleted: nothing to keep
                logger.debug("mark uncertain %s: claim no longer exists", key)

    def release(self, *, key: DedupKey) -> None:
        with self._wrap("release", key):
            self._claims.document(self.doc_id(key)).delete(retry=self._retry, timeout=self.timeout)

    def confirm(self, *, key: DedupKey, outcome: str, task_id: str = "") -> None:
        with self._wrap("confirm", key):
            try:
                self._claims.document(self.doc_id(key)).update(
                    {
                        "outcome": outcome,
                        "task_id": task_id,
                        "confirmed_at": self._firestore.SERVER_TIMESTAMP,
                    },
                    retry=self._retry,
                    timeout=self.timeout,
                )
            except self._gexc.NotFound:  # released or expired and deleted: nothing to mark
                logger.debug("confirm %s: claim no longer exists", key)

    def claim_state(self, key: DedupKey) -> dict[str, Any] | None:
        """The stored claim document (for tests and ``khook`` diagnostics), or None."""
        with self._wrap("read claim", key):
            snap = self._claims.document(self.doc_id(key)).get(
                retry=self._retry, timeout=self.timeout
            )
            return snap.to_dict() if snap.exists else None

    # -- audit trail --------------------------------------------------------------------------

    def record(self, firing: base.Firing) -> None:
        """The record and its minute's counter (``audit_counts``) in one batch: both or
        neither. A retried commit cannot count twice: the record's ``create`` fails the
        batch if the first attempt landed."""
        doc = audit_fields.to_document(firing)
        doc["expire_at"] = firing.at + self.audit_retention
        with self._wrap("record firing", firing.key):
            if not self._counting_marked:
                minute = base.bucket_start(firing.at, audit_counts.COUNTER_BUCKET)
                self._mark_counting(minute + audit_counts.COUNTER_BUCKET)
            batch = self._client.batch()
            batch.create(self._firings.document(), doc)
            batch.set(*self.counter_write(firing), merge=True)
            batch.commit(retry=self._retry, timeout=self.timeout)

    def counter_write(self, firing: base.Firing) -> tuple[Any, dict[str, Any]]:
        """The counter document of ``firing`` (its ten minutes, a shard at random) and the
        fields ``record`` merges into it; a bulk loader writes the same beside each record."""
        start = audit_counts.document_start(firing.at)
        shard = random.randrange(COUNTER_SHARDS)  # noqa: S311  (spreading, not secrecy)
        return self._counts.document(_counter_doc_id(start, shard)), {
            "bucket": start,
            # Outlives the last record it counts, as the audit retention keeps them.
            "expire_at": start + audit_counts.COUNTER_DOCUMENT + self.audit_retention,
            "counts": {
                audit_counts.minute_key(firing): {
                    audit_counts.group_key(firing): self._firestore.Increment(1)
                }
            },
        }

    def _mark_counting(self, since: datetime) -> None:
        """Counting begins (once per database): records before ``since`` may have no counter
        (written before this version), so counts read them, not counters."""
        with contextlib.suppress(self._gexc.AlreadyExists):
            self._counts.document(COUNTING_SINCE).create(
                {"since": since}, retry=self._retry, timeout=self.timeout
            )
        self._counting_marked = True

    def _counting_since(self) -> datetime | None:
        if self._counted_from is None:
            snap = self._counts.document(COUNTING_SINCE).get(
                retry=self._retry, timeout=self.timeout
            )
            since = (snap.to_dict() or {}).get("since") if snap.exists else None
            if isinstance(since, datetime):
                self._counted_from = since  # never changes once written
        return self._counted_from

    def firings(
        self, *, hook: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[base.Firing]:
        """Newest first. With ``hook`` set, production needs index ``firings(hook, at DESC)``."""
        if limit <= 0:
            return []
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self._firings
        if hook is not None:
            query = query.where(filter=FieldFilter("hook", "==", hook))
        if since is not None:
            query = query.where(filter=FieldFilter("at", ">=", since))
        query = query.order_by("at", direction=self._firestore.Query.DESCENDING).limit(limit)
        with self._wrap("list firings", hook or "*"):
            return [
                audit_fields.from_document(snap.to_dict() or {})
                for snap in query.stream(retry=self._retry, timeout=self.timeout)
            ]

    def query_firings(
        self, *, where: base.FiringFilter, cursor: str | None = None, limit: int = 100
    ) -> base.FiringPage:
        """Newest first, ties by document id. In production each combination of equality
        filters with ``at`` needs a composite index (the emulator needs none)."""
        if limit <= 0:
            return base.FiringPage([], None)
        query = self._filtered(where)
        query = query.order_by("at", direction=self._firestore.Query.DESCENDING).order_by(
            "__name__", direction=self._firestore.Query.DESCENDING
        )
        if cursor is not None:
            at_text, doc_id = base.decode_cursor(cursor, (str, str))
            try:
                at = datetime.fromisoformat(at_text)
            except ValueError as exc:
                raise base.InvalidCursorError(f"cursor {cursor[:40]!r}: bad time") from exc
            query = query.start_after({"at": at, "__name__": self._firings.document(doc_id)})
        with self._wrap("query firings", "*"):
            snaps = list(query.limit(limit + 1).stream(retry=self._retry, timeout=self.timeout))
        page = [(snap.id, audit_fields.from_document(snap.to_dict() or {})) for snap in snaps]
        page = page[:limit]
        next_cursor = None
        if len(snaps) > limit:
            last_id, last = page[-1]
            next_cursor = base.encode_cursor(last.at.isoformat(), last_id)
        return base.FiringPage([firing for _, firing in page], next_cursor)

    def count_firings(
        self, *, where: base.FiringFilter, bucket: timedelta
    ) -> list[base.FiringCount]:
        """Firestore has no GROUP BY: whole minutes are read from the per-minute counters
        written with the records (``audit_counts``), one document a minute and shard; the
        rest (partial minutes at the ends, records from before counting began, filters on
        uncounted fields) by streaming the matching records' five fields."""
        counts: Counter[tuple[datetime, str, str, str, str]] = Counter()
        with self._wrap("count firings", "*"):
            plan = audit_counts.plan(where, bucket, self._counting_since())
        if plan is None:
            self._count_streamed(where, bucket, counts)
        else:
            for part in plan.streamed:
                self._count_streamed(part, bucket, counts)
            self._count_counters(where, bucket, plan, counts)
        return [base.FiringCount(*group, n) for group, n in sorted(counts.items())]

    def _count_counters(
        self,
        where: base.FiringFilter,
        bucket: timedelta,
        plan: audit_counts.Plan,
        counts: Counter[tuple[datetime, str, str, str, str]],
    ) -> None:
        from google.cloud.firestore_v1.base_query import FieldFilter

        first = audit_counts.document_start(plan.start)
        query = self._counts.where(filter=FieldFilter("bucket", ">=", first))
        if plan.end is not None:
            query = query.where(filter=FieldFilter("bucket", "<", plan.end))
        query = query.select(["counts"])
        groups: dict[str, audit_counts.Group | None] = {}  # parsed once, not once a minute
        with self._wrap("count firings", "counters"):
            for snap in query.stream(retry=self._retry, timeout=max(self.timeout, COUNT_TIMEOUT_S)):
                minutes = (snap.to_dict() or {}).get("counts")
                if not isinstance(minutes, dict):
                    continue
                for minute_key, counted in minutes.items():
                    minute = audit_counts.parse_minute(minute_key)
                    if minute is None or not isinstance(counted, dict):
                        continue
                    if minute < plan.start or (plan.end is not None and minute >= plan.end):
                        continue  # a minute of the document outside the counters' range
                    start = base.bucket_start(minute, bucket)
                    for key, n in counted.items():
                        if key not in groups:
                            group = audit_counts.parse_group(key)
                            matched = group is not None and audit_counts.matches(group, where)
                            groups[key] = group if matched else None
                        found = groups[key]
                        if found is not None and n:
                            counts[(start, *found)] += int(n)

    def _count_streamed(
        self,
        where: base.FiringFilter,
        bucket: timedelta,
        counts: Counter[tuple[datetime, str, str, str, str]],
    ) -> None:
        query = self._filtered(where).select(["at", "hook", "source", "event_type", "outcome"])
        with self._wrap("count firings", "*"):
            for snap in query.stream(retry=self._retry, timeout=max(self.timeout, COUNT_TIMEOUT_S)):
                doc = snap.to_dict() or {}
                at = doc.get("at")
                if not isinstance(at, datetime):
                    continue
                counts[
                    (
                        base.bucket_start(at, bucket),
                        str(doc.get("hook") or ""),
                        str(doc.get("source") or ""),
                        str(doc.get("event_type") or ""),
                        str(doc.get("outcome") or ""),
                    )
                ] += 1

    def _filtered(self, where: base.FiringFilter) -> Any:
        from google.cloud.firestore_v1.base_query import FieldFilter

        query: Any = self._firings
        for name, value in where.equalities().items():
            query = query.where(filter=FieldFilter(name, "==", value))
        if where.since is not None:
            query = query.where(filter=FieldFilter("at", ">=", where.since))
        if where.until is not None:
            query = query.where(filter=FieldFilter("at", "<", where.until))
        return query

    def backlogs(self, *, limit: int) -> list[tuple[BacklogKey, Backlog]]:
        if limit <= 0:
            return []
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = (
            self._backlog.where(filter=FieldFilter("pending", "==", True))
            .order_by("key")
            .limit(limit)
        )
        with self._wrap("list backlogs", "*"):
            docs = [
                snap.to_dict() or {}
                for snap in query.stream(retry=self._retry, timeout=self.timeout)
            ]
        return [(_backlog_key(doc), Backlog.from_json(doc)) for doc in docs]

    def circuits(self, *, now: datetime, limit: int) -> list[base.CircuitRecord]:
        if limit <= 0:
            return []
        query = self._circuits.order_by("key").limit(limit)
        with self._wrap("list circuits", "*"):
            docs = [
                snap.to_dict() or {}
                for snap in query.stream(retry=self._retry, timeout=self.timeout)
            ]
        records = []
        for doc in docs:
            until = doc.get("open_until")
            until = until if isinstance(until, datetime) else None
            if until is not None:
                until = datetime.fromtimestamp(until.timestamp(), UTC)
            records.append(
                base.CircuitRecord(
                    str(doc.get("key", "")),
                    _int(doc.get("failures")),
                    base.circuit_state_of(until, now),
                    until,
                )
            )
        return records

    # -- storm control ------------------------------------------------------------------------

    def take_slot(self, *, key: str, limit: int, window: timedelta, now: datetime) -> bool:
        if limit <= 0:
            return False
        start = datetime.fromtimestamp(base.window_start(now, window), UTC)
        ref = self._slots.document(self.doc_id(f"{key}|{start.isoformat()}"))
        with self._wrap("take slot", key):
            snap = ref.get(retry=self._retry, timeout=self.timeout)
            if snap.exists and _int((snap.to_dict() or {}).get("used")) >= limit:
                return False
            # A retried increment may count twice: that errs towards fewer runs, never more.
            # (One document per window: a clock behind counts in its own, older window.)
            result = ref.set(
                {
                    "key": key,
                    "window_start": start,
                    "expire_at": start + window,
                    "used": self._firestore.Increment(1),
                },
                merge=True,
                retry=self._retry,
                timeout=self.timeout,
            )
        return _transformed(result) <= limit

    def return_slot(self, *, key: str, window: timedelta, now: datetime) -> None:
        start = datetime.fromtimestamp(base.window_start(now, window), UTC)
        ref = self._slots.document(self.doc_id(f"{key}|{start.isoformat()}"))
        with self._wrap("return slot", key):
            snap = ref.get(retry=self._retry, timeout=self.timeout)
            used = _int((snap.to_dict() or {}).get("used")) if snap.exists else 0
            if used <= 0:  # expired, deleted or all given back: never below zero
                return
            # Written only if nobody counted in between: a lost race or a retried write whose
            # first attempt landed leaves the slot taken, erring towards fewer runs, never more.
            option = self._client.write_option(last_update_time=snap.update_time)
            try:
                ref.update(
                    {"used": used - 1}, option=option, retry=self._retry, timeout=self.timeout
                )
            except (self._gexc.NotFound, self._gexc.FailedPrecondition):
                return

    def acquire_lease(self, *, scope: str, cap: int, ttl: timedelta, now: datetime) -> str | None:
        if cap <= 0:
            return None
        refs = [self._leases.document(self.doc_id(f"{scope}#{i}")) for i in range(cap)]
        holder = uuid.uuid4().hex
        data = {"scope": scope, "taken_at": now, "expire_at": now + ttl, "holder": holder}
        gexc = self._gexc
        with self._wrap("acquire lease", scope):
            snaps = {
                snap.id: snap
                for snap in self._client.get_all(refs, retry=self._retry, timeout=self.timeout)
            }
            free = [ref for ref in refs if _lapsed(snaps.get(ref.id), now)]
            random.shuffle(free)  # concurrent takers spread over the free leases
            for ref in free:
                snap = snaps.get(ref.id)
                try:
                    if snap is None or not snap.exists:
                        ref.create(data, retry=self._retry, timeout=self.timeout)
                    else:
                        ref.update(
                            data,
                            option=self._client.write_option(last_update_time=snap.update_time),
                            retry=self._retry,
                            timeout=self.timeout,
                        )
                    return f"{ref.id}:{holder}"
                except (gexc.AlreadyExists, gexc.FailedPrecondition, gexc.NotFound):
                    continue  # someone took this one first: try the next
        return None

    def release_lease(self, *, scope: str, lease: str) -> None:
        doc_id, _, holder = lease.partition(":")
        ref = self._leases.document(doc_id)
        with self._wrap("release lease", scope):
            snap = ref.get(retry=self._retry, timeout=self.timeout)
            if not snap.exists or (snap.to_dict() or {}).get("holder") != holder:
                return  # lapsed and taken by someone else, or already gone: not ours
            try:
                ref.delete(
                    option=self._client.write_option(last_update_time=snap.update_time),
                    retry=self._retry,
                    timeout=self.timeout,
                )
            except (self._gexc.FailedPrecondition, self._gexc.NotFound):
                return  # retaken in between: leave it to its new holder

    def add_backlog(self, *, key: BacklogKey, backlog: Backlog) -> None:
        stored = key.stored
        typed = {"key": stored, "kind": key.kind.value, "name": key.name}

        def merge(doc: dict[str, Any] | None) -> tuple[dict[str, Any], None]:
            merged = backlog
            if doc is not None and doc.get("pending"):
                merged = Backlog.from_json(doc).merge(backlog)
            return {**typed, "pending": True, **merged.to_json()}, None

        self._read_modify_write(
            self._backlog.document(self.doc_id(stored)), "add backlog", stored, merge
        )

    def take_backlog(self, *, key: BacklogKey) -> Backlog | None:
        def take(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, Backlog | None]:
            if doc is None or not doc.get("pending"):
                return None, None
            # Emptied, not deleted: only a write carries the token that recognises a retry.
            return {"pending": False, "summary": None, "event": None}, Backlog.from_json(doc)

        stored = key.stored
        return self._read_modify_write(
            self._backlog.document(self.doc_id(stored)), "take backlog", stored, take
        )

    def backlog_keys(self, *, limit: int) -> list[BacklogKey]:
        if limit <= 0:
            return []
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self._backlog.where(filter=FieldFilter("pending", "==", True)).limit(limit)
        with self._wrap("list backlogs", "*"):
            return [
                _backlog_key(snap.to_dict() or {})
                for snap in query.stream(retry=self._retry, timeout=self.timeout)
            ]

    def record_failure(
        self, *, key: str, threshold: int, cool_down: timedelta, now: datetime
    ) -> bool:
        ref = self._circuits.document(self.doc_id(key))
        with self._wrap("record failure", key):
            result = ref.set(
                {
                    "key": key,
                    "failures": self._firestore.Increment(1),
                    "expire_at": now + max(cool_down, CIRCUIT_MEMORY),
                },
                merge=True,
                retry=self._retry,
                timeout=self.timeout,
            )
            if _transformed(result) < threshold:
                return False
            ref.update({"open_until": now + cool_down}, retry=self._retry, timeout=self.timeout)
        return True

    def record_success(self, *, key: str) -> None:
        with self._wrap("record success", key):
            self._circuits.document(self.doc_id(key)).delete(
                retry=self._retry, timeout=self.timeout
            )

    def circuit_state(self, *, key: str, now: datetime) -> base.CircuitState:
        with self._wrap("read circuit", key):
            snap = self._circuits.document(self.doc_id(key)).get(
                retry=self._retry, timeout=self.timeout
            )
        open_until = (snap.to_dict() or {}).get("open_until") if snap.exists else None
        return base.circuit_state_of(open_until if isinstance(open_until, datetime) else None, now)

    def _read_modify_write(
        self,
        ref: Any,
        what: str,
        key: str,
        change: Callable[[dict[str, Any] | None], tuple[dict[str, Any] | None, T]],
    ) -> T:
        """Optimistic read-modify-write of one document.

        ``change(current or None)`` returns the fields to write (None: write nothing) and the
        result. The write carries a precondition on what was read (``create`` if it was absent,
        else its ``update_time``), so a concurrent writer makes it fail and the loop reads again.
        Firestore transactions would lock instead; the emulator serialises those at about
        200 ms each and aborted some under four-way contention, losing updates.
        A ``writer`` token lets a write that the library retried after a timeout (the first
        attempt having landed) be recognised instead of being applied twice.
        """
        gexc = self._gexc
        token = uuid.uuid4().hex
        tried: list[T] = []  # the result of the write that may have landed
        with self._wrap(what, key):
            for attempt in range(MAX_RMW_ROUNDS):
                snap = ref.get(retry=self._retry, timeout=self.timeout)
                current = (snap.to_dict() or {}) if snap.exists else None
                if tried and current is not None and current.get("writer") == token:
                    return tried[-1]
                new, result = change(current)
                if new is None:
                    return result
                try:
                    if current is None:
                        ref.create(
                            {**new, "writer": token}, retry=self._retry, timeout=self.timeout
                        )
                    else:
                        ref.update(
                            {**new, "writer": token},
                            option=self._client.write_option(last_update_time=snap.update_time),
                            retry=self._retry,
                            timeout=self.timeout,
                        )
                    return result
                except (gexc.AlreadyExists, gexc.FailedPrecondition, gexc.NotFound):
                    tried.append(result)
                    # Spread the contenders out; a hot document is one being stormed.
                    time.sleep(random.uniform(0, min(0.5, 0.005 * 2**attempt)))  # noqa: S311
        raise TransientError(
            f"Firestore {what} {key}: still contended after {MAX_RMW_ROUNDS} rounds; retry later"
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing must never mask the real outcome
            self._client.close()

    @contextlib.contextmanager
    def _wrap(self, what: str, key: str) -> Iterator[None]:
        """Google errors never leave ``state/``: TransientError, cause chained."""
        from google.auth import exceptions as auth_exc

        try:
            yield
        except (self._gexc.GoogleAPIError, auth_exc.GoogleAuthError) as exc:
            raise TransientError(
                f"Firestore {what} {key} (project {self.project}, database {self.database}): "
                f"{type(exc).__name__}: {exc}"
            ) from exc


def _backlog_key(doc: dict[str, Any]) -> BacklogKey:
    """The typed key of a backlog document; one written before ``kind`` was stored is read
    by its ``key``."""
    kind = doc.get("kind")
    if kind:
        return BacklogKey(BacklogKind(kind), str(doc.get("name", "")))
    return BacklogKey.from_stored(str(doc.get("key", "")))


def _claim_document(
    key: DedupKey, owner: str, now: datetime, ttl: timedelta, **extra: object
) -> dict[str, object]:
    """A claim as stored: unconfirmed, expiring after ``ttl``; ``extra`` for a firing's claim
    (its attempt token, whether a send of it may have arrived)."""
    return {
        "key": key,
        "owner": owner,
        "claimed_at": now,
        "expire_at": now + ttl,
        "outcome": base.CLAIMED,
        "task_id": "",
        **extra,
    }


def _claim_contended(key: DedupKey) -> TransientError:
    return TransientError(
        f"Firestore claim {key}: still contended after {MAX_CLAIM_ROUNDS} rounds; retry later"
    )


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


def _transformed(result: Any) -> int:
    """The value an ``Increment`` produced, as the commit returned it."""
    return int(result.transform_results[0].integer_value)


def _lapsed(snap: Any, now: datetime) -> bool:
    if snap is None or not snap.exists:
        return True
    expire_at = (snap.to_dict() or {}).get("expire_at")
    return not isinstance(expire_at, datetime) or expire_at <= now


def _counter_doc_id(start: datetime, shard: int) -> str:
    """A hash, not the time: ids in time order would pile the writes onto one key range."""
    return hashlib.sha256(f"{start.isoformat()}|{shard}".encode()).hexdigest()[:32]
