"""List-then-watch of Kubernetes Events, split kopf-style into one step and a thin loop.

``EventWatcher.step`` does exactly one thing per call, decided by ``WatchState``: a (paged) list
when there is no resourceVersion to resume from, otherwise one watch call from the last seen
resourceVersion with bookmarks and a ``timeoutSeconds``. It returns an ``Outcome`` or raises,
and it is what the tests drive. ``run_watch_loop`` only repeats it, backs off after errors and
empty streams, and stops when asked.

Liveness is contact, not an open socket: ``WatchState.last_alive`` moves on a finished list, on
every watch line (events and bookmarks) and when the server ends a watch normally. An open watch
that has gone silent proves nothing, so ``WatchTimings.call_timeouts`` keeps each watch short
enough that a healthy but quiet cluster still makes contact well inside ``dead_after``, and cuts
a silent stream early enough that the resumed watch makes contact before ``dead_after`` too.

The Kubernetes list/watch rules followed: a watch resumes from the newest resourceVersion seen
on any line, bookmarks included, so a resumed watch repeats nothing; 410 Gone (an ERROR line or
the HTTP status) and repeated empty streams from a stale resourceVersion mean "list again". The
client (``kube_http``) never retries by itself.

A re-list is anchored on what the watch delivered, never on when it was processed. Events are
not watch-cached by default, so an Events watch is an etcd watch: it gets no BOOKMARKs, and after
a quiet spell longer than etcd's compaction interval every resume meets 410. The re-list that
follows must then republish nothing, and after a lag (a slow Pub/Sub holding the watch back) it
must forward everything the watch never delivered. Both follow from one rule: a listed Event
whose resourceVersion is at most the newest the forwarder has judged (``WatchState.seen_through``)
was already judged and is skipped as ``already-seen``; every other one is judged against the
freshness window. This compares resourceVersions, which every etcd-backed API server issues as
increasing integers; should a server issue others, the window falls back to the newest last
occurrence the watch delivered minus ``relist_overlap``.
"""

from __future__ import annotations

import enum
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from khook_core.forwarder.backoff import Backoff
from khook_core.forwarder.filtering import EventFilter, Outbound, Verdict
from khook_core.forwarder.kube import EventsEndpoint, RawWatch
from khook_core.forwarder.kube_http import ApiException
from khook_core.forwarder.metrics import ForwarderMetrics

logger = logging.getLogger(__name__)

HTTP_GONE = 410
ALREADY_SEEN = "already-seen"
"""Filter reason of a listed Event version the forwarder had judged before (forwarded or not)."""
CONNECT_TIMEOUT = 10.0
"""Seconds to open a connection to the API server before it counts as an error."""
READ_MARGIN = 30.0
"""Added to ``timeoutSeconds`` for the socket read timeout (at most; see ``call_timeouts``): a
connection that went silent without closing is detected, while a quiet but healthy watch, which
the server ends at ``timeoutSeconds``, is never cut by the client."""


class Outcome(enum.Enum):
    """What one step achieved; the loop backs off after ``EMPTY`` and ``EXPIRED``."""

    LISTED = "listed"
    WATCHED = "watched"  # the stream ended after delivering something, or after a full timeout
    EMPTY = "empty"  # closed at once with nothing in it
    EXPIRED = "expired"  # the resourceVersion is gone: the next step lists
    STOPPED = "stopped"


@dataclass
class WatchState:
    """Where one endpoint's list/watch stands; no per-event data, so its size is constant."""

    resource_version: str | None = None
    listed: bool = False
    empty_streak: int = 0
    watches: int = 0
    in_flight: bool = False
    last_alive: float = field(default_factory=time.monotonic)
    """Monotonic time of the last contact: a list, a line, or a watch the server ended normally.

    Opening a watch is not contact: a stream can be accepted and then stay silent forever."""
    seen_through: int | None = None
    """Every change up to this resourceVersion has been judged (a finished list, a watch line).

    Kept across an expiry: it is what lets a re-list skip what was already judged."""
    seen_until: datetime | None = None
    """Newest last occurrence judged; anchors a re-list only when resourceVersions are not
    integers."""
    problem: str | None = None
    """The last API error, with the server's own reason, until a list or watch works again."""


def version_number(version: object) -> int | None:
    """A resourceVersion as an integer, or None when the server issued something else."""
    if isinstance(version, str) and version.isascii() and version.isdigit():
        return int(version)
    return None


def object_key(obj: dict[str, Any]) -> str:
    """``namespace/name``: the order in which the API server pages a list."""
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


@dataclass(frozen=True)
class _Partial:
    """The part of a list that was judged before its continue token expired."""

    snapshot: int
    through_key: str

    def covers(self, key: str, version: int) -> bool:
        # Pages come in key order, so every key up to ``through_key`` was judged at ``snapshot``;
        # an item unchanged since then has a resourceVersion no newer than the snapshot.
        return key <= self.through_key and version <= self.snapshot


class ContinueExpired(Exception):
    """A continue token outlived etcd's compaction; the list starts again from the top."""

    def __init__(self, partial: _Partial | None, reason: str) -> None:
        super().__init__(reason)
        self.partial = partial


@dataclass(frozen=True)
class WatchTimings:
    """The settings a step needs (see ``ForwarderSettings`` for the meaning of each)."""

    lookback: timedelta
    max_age: timedelta
    relist_overlap: timedelta
    watch_timeout: int
    page_size: int
    empty_limit: int
    empty_seconds: float
    field_selector: str | None = None
    dead_after: float | None = None
    """The liveness limit the watch calls must fit in; None leaves ``watch_timeout`` uncapped."""

    def call_timeouts(self) -> tuple[int, float]:
        """``timeoutSeconds`` and the socket read timeout of one watch call.

        Without a liveness limit: ``watch_timeout``, and ``READ_MARGIN`` more for the read. With
        one (D), the server is asked to end each watch within D/4 (whole seconds, at least 1),
        and a stream silent for D/4 longer than that (``READ_MARGIN`` at most) is cut. So:

        * a quiet, healthy watch ends within D/4 (the server's normal end is contact, with or
          without a BOOKMARK) and resumes: contact never lapses, however long the cluster
          stays quiet;
        * a stuck stream costs at most D/2 of silence, the backoff, then D/4 until the resumed
          watch makes contact: under D, so one wedged connection heals without /healthz
          failing, while a watch that never makes contact again fails it after D.

        Both hold for D of 4 s or more; below that the one-second floor wins.
        """
        if self.dead_after is None:
            return self.watch_timeout, self.watch_timeout + READ_MARGIN
        server = max(1, min(self.watch_timeout, int(self.dead_after // 4)))
        return server, server + min(READ_MARGIN, self.dead_after / 4)


class EventWatcher:
    """Lists and watches one ``EventsEndpoint`` and hands forwardable Events to ``sink``."""

    def __init__(
        self,
        *,
        endpoint: EventsEndpoint,
        timings: WatchTimings,
        event_filter: EventFilter,
        sink: Callable[[Outbound], None],
        metrics: ForwarderMetrics,
        clock: Callable[[], datetime],
    ) -> None:
        self.endpoint = endpoint
        self.timings = timings
        self.filter = event_filter
        self.sink = sink
        self.metrics = metrics
        self.clock = clock
        self._current: RawWatch | None = None
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Ask the running step to end now (safe from any thread)."""
        self._stopping.set()
        current = self._current
        if current is not None:
            current.stop()

    def step(self, state: WatchState) -> Outcome:
        """One list or one watch call.

        Raises:
            ApiException: an API error other than 410 (the loop backs off and retries).
            urllib3.exceptions.HTTPError, OSError: connection trouble (same).
        """
        if self._stopping.is_set():
            return Outcome.STOPPED
        if state.resource_version is None:
            return self.relist(state)
        return self.watch(state)

    # --- list -----------------------------------------------------------------------------

    def relist(self, state: WatchState) -> Outcome:
        """List every page and judge each item (see the module docstring for which are skipped).

        The first list forwards what occurred within the look-back; a re-list forwards every
        Event not judged before that is inside the freshness window, however far behind the
        watch was. A continue token that expires mid-list restarts the list (one more re-list),
        skipping what the pages already read had judged.
        """
        first = not state.listed
        newer_than = self._list_window(state)  # once: a restarted list keeps the same window
        done: list[_Partial] = []
        while True:
            try:
                resource_version = self._list_all(state, newer_than, done)
                break
            except ContinueExpired as expired:
                if expired.partial is not None:
                    done.append(expired.partial)
                self.metrics.relisted()
                logger.warning(
                    "the continue token of a list of %s expired (%s); listing again from the start",
                    self.endpoint.describe(),
                    expired,
                )
        state.resource_version = resource_version
        number = version_number(resource_version)
        if number is not None:
            state.seen_through = max(number, state.seen_through or 0)
        state.listed = True
        if not first:
            self.metrics.relisted()
        state.empty_streak = 0
        self._alive(state)
        logger.info("listed %s at resourceVersion %s", self.endpoint.describe(), resource_version)
        return Outcome.LISTED

    def _list_window(self, state: WatchState) -> datetime:
        """The oldest last occurrence a list forwards."""
        now = self.clock()
        if state.seen_through is None and state.seen_until is None:
            return now - self.timings.lookback  # nothing judged yet: start-up
        newer_than = now - self.timings.max_age
        if state.seen_through is None and state.seen_until is not None:
            newer_than = max(newer_than, state.seen_until - self.timings.relist_overlap)
        return newer_than

    def _list_all(self, state: WatchState, newer_than: datetime, done: list[_Partial]) -> str:
        token: str | None = None
        resource_version: str | None = None
        last_key: str | None = None
        while True:
            try:
                page = self._list_page(token)
            except ApiException as exc:
                if exc.status != HTTP_GONE or token is None:
                    raise
                snapshot = version_number(resource_version)
                partial = (
                    _Partial(snapshot, last_key)
                    if snapshot is not None and last_key is not None
                    else None
                )
                raise ContinueExpired(partial, server_reason(exc)) from exc
            meta = page.get("metadata") or {}
            if resource_version is None:
                # The first page fixes the snapshot; continue pages belong to it.
                resource_version = str(meta.get("resourceVersion") or "")
            api_version = page.get("apiVersion") or self.endpoint.api
            for item in page.get("items") or []:
                if isinstance(item, dict):
                    last_key = object_key(item)
                    if self._judged_before(state, item, last_key, done):
                        self.metrics.event_seen("ADDED")
                        self.metrics.event_filtered(ALREADY_SEEN)
                        continue
                    # List items omit apiVersion/kind; add them so every published object is
                    # self-describing, exactly as the same object arrives from a watch.
                    self._judge(
                        "ADDED",
                        {"apiVersion": api_version, "kind": "Event", **item},
                        newer_than,
                        state,
                    )
            token = meta.get("continue") or None
            if token is None or self._stopping.is_set():
                break
        if not resource_version:
            raise ApiException(status=500, reason="list response without metadata.resourceVersion")
        return resource_version

    @staticmethod
    def _judged_before(
        state: WatchState, item: dict[str, Any], key: str, done: list[_Partial]
    ) -> bool:
        version = version_number((item.get("metadata") or {}).get("resourceVersion"))
        if version is None:
            return False
        if state.seen_through is not None and version <= state.seen_through:
            return True
        return any(partial.covers(key, version) for partial in done)

    def _list_page(self, token: str | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "limit": self.timings.page_size,
            "_preload_content": False,
            "_request_timeout": (CONNECT_TIMEOUT, CONNECT_TIMEOUT + READ_MARGIN),
        }
        if token:
            kwargs["_continue"] = token
        if self.timings.field_selector:
            kwargs["field_selector"] = self.timings.field_selector
        response = self.endpoint.list_fn(**kwargs)
        try:
            page = json.loads(response.data)
        finally:
            response.release_conn()
        if not isinstance(page, dict):
            raise ApiException(status=500, reason="list response is not a JSON object")
        return page

    # --- watch ----------------------------------------------------------------------------

    def watch(self, state: WatchState) -> Outcome:
        """One watch call from ``state.resource_version``, until the stream ends."""
        if state.watches:
            self.metrics.watch_restarted()
        state.watches += 1
        server_timeout, read_timeout = self.timings.call_timeouts()
        kwargs: dict[str, Any] = {
            "resource_version": state.resource_version,
            "allow_watch_bookmarks": True,
            "timeout_seconds": server_timeout,
            # urllib3 applies it to every socket read: the longest silence an open watch may keep.
            "_request_timeout": (CONNECT_TIMEOUT, read_timeout),
        }
        if self.timings.field_selector:
            kwargs["field_selector"] = self.timings.field_selector
        lines = 0
        started = time.monotonic()
        current = self._current = RawWatch()
        state.in_flight = True
        try:
            for event in current.stream(self.endpoint.list_fn, **kwargs):
                lines += 1
                self._on_line(event, state)
        except ApiException as exc:
            if exc.status == HTTP_GONE:
                return self._expired(state, f"410 from the API server: {exc.reason}")
            raise
        except Exception:
            if self._stopping.is_set():
                return Outcome.STOPPED  # stop() shut the socket under the read
            raise
        finally:
            state.in_flight = False
            self._current = None
        if self._stopping.is_set():
            return Outcome.STOPPED
        if lines == 0 and time.monotonic() - started < self.timings.empty_seconds:
            state.empty_streak += 1
            if state.empty_streak >= self.timings.empty_limit:
                return self._expired(state, f"{state.empty_streak} empty watches in a row")
            return Outcome.EMPTY
        state.empty_streak = 0
        self._alive(state)
        return Outcome.WATCHED

    def _on_line(self, event: dict[str, Any] | None, state: WatchState) -> None:
        if event is None:
            self.metrics.event_filtered("undecodable")
            logger.warning("skipped an undecodable watch line from %s", self.endpoint.describe())
            return
        kind = event.get("type")
        obj = event["raw_object"]
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self._judge(
                str(kind),
                obj,
                self.clock() - self.timings.max_age,
                state,
                text=event.get("raw_text"),
            )
        elif kind != "BOOKMARK":
            logger.warning("ignored a watch line of type %r", kind)
        # Only after the line is handled: a resume then starts strictly after it, and a re-list
        # skips it.
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if isinstance(version, str) and version:
            state.resource_version = version
            number = version_number(version)
            if number is not None:
                state.seen_through = max(number, state.seen_through or 0)
        self._alive(state)

    def _judge(
        self,
        kind: str,
        obj: dict[str, Any],
        newer_than: datetime,
        state: WatchState,
        *,
        text: str | None = None,
    ) -> None:
        self.metrics.event_seen(kind)
        verdict: Verdict = self.filter.decide(kind, obj, newer_than=newer_than, text=text)
        last = verdict.last
        if last is not None and (state.seen_until is None or last > state.seen_until):
            state.seen_until = last
        if verdict.message is None:
            self.metrics.event_filtered(verdict.reason)
            return
        self.sink(verdict.message)
        self.metrics.event_forwarded()

    def _expired(self, state: WatchState, why: str) -> Outcome:
        logger.warning(
            "resourceVersion %s of %s expired (%s); listing again",
            state.resource_version,
            self.endpoint.describe(),
            why,
        )
        state.resource_version = None
        state.empty_streak = 0
        return Outcome.EXPIRED

    def _alive(self, state: WatchState) -> None:
        state.last_alive = time.monotonic()
        state.problem = None


def server_reason(exc: ApiException) -> str:
    """The API server's own words for a refusal: the Status ``message``, else the HTTP reason."""
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if isinstance(body, str) and body:
        try:
            status = json.loads(body)
        except json.JSONDecodeError:
            status = None
        if isinstance(status, dict) and isinstance(status.get("message"), str):
            return f"HTTP {exc.status}: {status['message']}"
    return f"HTTP {exc.status} {exc.reason}"


def run_watch_loop(
    watcher: EventWatcher,
    state: WatchState,
    *,
    stop: threading.Event,
    backoff: Backoff,
    metrics: ForwarderMetrics,
    _iterations: int | None = None,
) -> None:
    """Repeat ``watcher.step`` until ``stop`` is set (or ``_iterations`` steps, for tests).

    Errors never end the loop: they are logged, counted and followed by a jittered backoff.
    """
    done = 0
    while not stop.is_set() and (_iterations is None or done < _iterations):
        done += 1
        try:
            outcome = watcher.step(state)
        except ApiException as exc:
            metrics.api_error()
            delay = backoff.next()
            state.problem = server_reason(exc)
            refused = exc.status is not None and 400 <= exc.status < 500
            # A refusal (a field selector the server does not know, missing RBAC) will not cure
            # itself: say so loudly, with the server's reason, which /readyz shows as well.
            logger.log(
                logging.ERROR if refused else logging.WARNING,
                "Kubernetes API %s on %s (%s); retrying in %.1f s",
                "refusal" if refused else "error",
                watcher.endpoint.describe(),
                state.problem,
                delay,
            )
            stop.wait(delay)
            continue
        except Exception as exc:  # connection errors of every kind: the loop must live on
            metrics.api_error()
            delay = backoff.next()
            state.problem = f"{type(exc).__name__}: {str(exc)[-300:]}"
            logger.warning(
                "watch of %s failed (%s: %s); retrying in %.1f s",
                watcher.endpoint.describe(),
                type(exc).__name__,
                exc,
                delay,
            )
            stop.wait(delay)
            continue
        if outcome is Outcome.STOPPED:
            return
        if outcome in (Outcome.EMPTY, Outcome.EXPIRED):
            # Only a watch that worked resets the schedule, so a server that answers every
            # list with a resourceVersion it then calls expired is not hammered.
            stop.wait(backoff.next())
        elif outcome is Outcome.WATCHED:
            backoff.reset()
