"""The forwarder's list/watch against a test API server, through the real kubernetes client.

Each test scripts what the server does (server-side timeouts, BOOKMARK, ERROR 410, HTTP 410,
empty streams, dropped connections) and checks two things: what the server was asked (the
resourceVersion each call resumed from) and what was forwarded (nothing twice, nothing lost).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import urllib3

from khook_core.event import utcnow
from khook_core.forwarder import kube
from khook_core.forwarder.backoff import Backoff
from khook_core.forwarder.config import ForwarderSettings
from khook_core.forwarder.filtering import Outbound
from khook_core.forwarder.metrics import ForwarderMetrics
from khook_core.forwarder.watching import (
    EventWatcher,
    Outcome,
    WatchState,
    WatchTimings,
    run_watch_loop,
)
from tests.support.forwarder import StallingKubeApi, make_filter
from tests.support.kube_api import CORE_API, FakeKubeApi, Script


@dataclass
class Rig:
    """One watcher on one server, with everything it forwarded."""

    api: FakeKubeApi
    watcher: EventWatcher
    state: WatchState = field(default_factory=WatchState)
    sent: list[Outbound] = field(default_factory=list)
    metrics: ForwarderMetrics = field(default_factory=ForwarderMetrics)

    def names(self) -> list[str]:
        return [json.loads(m.data)["metadata"]["name"] for m in self.sent]

    def versions(self) -> list[str]:
        return [json.loads(m.data)["metadata"]["resourceVersion"] for m in self.sent]

    def watched_from(self) -> list[str]:
        return [r.query["resourceVersion"] for r in self.api.watch_requests()]


@pytest.fixture
def rig(kube_api_factory: Callable[..., FakeKubeApi]) -> Iterator[Callable[..., Rig]]:
    stalling: list[StallingKubeApi] = []

    def build(
        *,
        api: str = "events.k8s.io/v1",
        namespaces: str = "",
        lookback: float = 300,
        overlap: float = 0.0,
        watch_max_seconds: float = 0.3,
        forward_all: bool = False,
        stalls: int = 0,
        clock: Callable[[], datetime] = utcnow,
        **timing: object,
    ) -> Rig:
        server: FakeKubeApi
        if stalls:
            stalling.append(
                StallingKubeApi(api=api, watch_max_seconds=watch_max_seconds, stalls=stalls)
            )
            server = stalling[-1].start()
        else:
            server = kube_api_factory(api=api, watch_max_seconds=watch_max_seconds)
        settings = ForwarderSettings(
            kube_api_url=server.url, api=api, namespaces=namespaces, topic="projects/p/topics/t"
        )
        endpoint = kube.endpoints(kube.api_client(settings), settings)[0]
        timings = WatchTimings(
            lookback=timedelta(seconds=lookback),
            max_age=timedelta(minutes=15),
            relist_overlap=timedelta(seconds=overlap),
            watch_timeout=5,
            page_size=2,
            empty_limit=2,
            empty_seconds=1.0,
        )
        timings = WatchTimings(**{**timings.__dict__, **timing})
        sent: list[Outbound] = []
        metrics = ForwarderMetrics()
        watcher = EventWatcher(
            endpoint=endpoint,
            timings=timings,
            sink=sent.append,
            event_filter=make_filter(forward_all=forward_all, api=api, clock=clock),
            metrics=metrics,
            clock=clock,
        )
        return Rig(server, watcher, sent=sent, metrics=metrics)

    yield build
    for server in stalling:
        server.stop()


def test_start_up_lists_then_watches_from_the_list_version_with_bookmarks(rig):
    r = rig()
    r.api.create("BackOff", object_name="web-0")
    listed_at = str(r.api.resource_version)

    assert r.watcher.step(r.state) is Outcome.LISTED
    r.api.create("BackOff", object_name="web-1")
    assert r.watcher.step(r.state) is Outcome.WATCHED

    query = r.api.watch_requests()[0].query
    assert query["resourceVersion"] == listed_at
    assert query["allowWatchBookmarks"] == "true"
    assert query["timeoutSeconds"] == "5"
    assert r.names()[0].startswith("web-0.")
    assert r.names()[1].startswith("web-1.")


def test_start_up_does_not_flood_with_old_events(rig):
    r = rig(lookback=60, forward_all=True)
    now = datetime.now(UTC)
    r.api.create("BackOff", object_name="old", when=now - timedelta(minutes=10))
    r.api.create("BackOff", object_name="recent", when=now - timedelta(seconds=10))
    for i in range(5):  # several list pages (page size 2)
        r.api.create(
            "Pulled", type_="Normal", object_name=f"noise-{i}", when=now - timedelta(minutes=30)
        )

    r.watcher.step(r.state)

    assert [n.split(".")[0] for n in r.names()] == ["recent"]
    assert r.metrics.filtered["stale"] == 6
    assert len(r.api.list_requests()) == 4
    assert {q.query.get("continue", "")[:4] for q in r.api.list_requests()[1:]} == {
        r.state.resource_version
    }


def test_list_items_are_published_self_describing(rig):
    r = rig()
    created = r.api.create("BackOff")

    r.watcher.step(r.state)

    assert json.loads(r.sent[0].data) == created


def test_a_server_side_timeout_resumes_from_the_last_event_and_repeats_nothing(rig):
    r = rig()
    r.watcher.step(r.state)
    r.api.script(Script("close", after=2), Script("close", after=1))
    for i in range(4):
        r.api.create("BackOff", object_name=f"web-{i}")

    outcomes = [r.watcher.step(r.state) for _ in range(3)]

    assert outcomes == [Outcome.WATCHED] * 3
    versions = r.versions()
    assert versions == sorted(set(versions), key=int)
    assert len(versions) == 4
    assert r.watched_from()[1:] == versions[1:3]
    assert r.metrics.watch_restarts == 2


def test_a_bookmark_moves_the_resume_point_without_forwarding(rig):
    r = rig()
    r.watcher.step(r.state)
    r.api.create("Pulled", type_="Normal", namespace="other")  # filtered, but it moves the RV

    assert r.watcher.step(r.state) is Outcome.WATCHED  # ends with a BOOKMARK at the server's RV
    r.watcher.step(r.state)

    assert r.sent == []
    assert r.watched_from()[1] == str(r.api.resource_version)


def test_an_error_410_line_makes_it_list_again_and_nothing_between_is_lost(rig):
    r = rig(overlap=0.0)
    r.api.create("BackOff", object_name="before", when=datetime.now(UTC) - timedelta(seconds=2))
    r.watcher.step(r.state)
    r.api.script("gone")
    r.api.compact()
    gap = r.api.create("BackOff", object_name="during-gap")

    assert r.watcher.step(r.state) is Outcome.EXPIRED
    assert r.watcher.step(r.state) is Outcome.LISTED

    assert [n.split(".")[0] for n in r.names()] == ["before", "during-gap"]
    assert r.state.resource_version == str(r.api.resource_version)
    assert r.metrics.relists == 1
    assert json.loads(r.sent[-1].data)["metadata"]["uid"] == gap["metadata"]["uid"]


def test_a_relist_after_a_long_lag_forwards_every_unseen_event_and_nothing_seen(rig):
    # The forwarder read one Event, then fell minutes behind (a slow Pub/Sub, a starved CPU)
    # while three more arrived; its watch then expired. What it processed last is minutes
    # after those three occurred, far beyond any overlap, yet they are inside the window.
    lag = timedelta(0)
    r = rig(overlap=30.0, clock=lambda: utcnow() + lag)
    r.watcher.step(r.state)
    r.api.create("BackOff", object_name="read")
    r.api.script(Script("close", after=1))
    r.watcher.step(r.state)
    unread = {
        r.api.create("BackOff", object_name=f"unread-{i}")["metadata"]["uid"] for i in range(3)
    }
    lag = timedelta(minutes=5)
    r.api.script("gone")
    r.api.compact()

    assert r.watcher.step(r.state) is Outcome.EXPIRED
    assert r.watcher.step(r.state) is Outcome.LISTED

    assert r.names()[0].startswith("read.")
    assert {json.loads(m.data)["metadata"]["uid"] for m in r.sent[1:]} == unread
    assert len(r.sent) == 4
    assert r.metrics.filtered == {"already-seen": 1}


def test_without_integer_resource_versions_the_relist_anchors_on_delivered_times():
    now = datetime(2026, 1, 5, 10, 30, tzinfo=UTC)
    timings = WatchTimings(
        lookback=timedelta(minutes=5),
        max_age=timedelta(minutes=15),
        relist_overlap=timedelta(seconds=30),
        watch_timeout=5,
        page_size=2,
        empty_limit=2,
        empty_seconds=1.0,
    )
    watcher = EventWatcher(
        endpoint=None,  # type: ignore[arg-type]
        timings=timings,
        event_filter=None,  # type: ignore[arg-type]
        sink=lambda m: None,
        metrics=ForwarderMetrics(),
        clock=lambda: now,
    )
    delivered = now - timedelta(minutes=7)  # the newest occurrence the watch had delivered

    assert watcher._list_window(WatchState()) == now - timedelta(minutes=5)  # start-up
    assert watcher._list_window(WatchState(seen_until=delivered)) == delivered - timedelta(
        seconds=30
    )
    assert watcher._list_window(WatchState(seen_through=7, seen_until=delivered)) == (
        now - timedelta(minutes=15)
    )


def test_an_http_410_on_the_watch_request_also_lists_again(rig):
    r = rig()
    r.watcher.step(r.state)
    r.api.script("gone-http")

    assert r.watcher.step(r.state) is Outcome.EXPIRED
    assert r.state.resource_version is None


def test_repeated_empty_watches_are_treated_as_expired(rig):
    r = rig()
    r.watcher.step(r.state)
    listed_at = r.state.resource_version
    r.api.script("empty", "empty")

    assert r.watcher.step(r.state) is Outcome.EMPTY
    assert r.state.resource_version == listed_at  # one empty stream is not proof yet
    assert r.watcher.step(r.state) is Outcome.EXPIRED
    assert r.watcher.step(r.state) is Outcome.LISTED
    assert len(r.api.list_requests()) == 2


def test_a_quiet_watch_that_lasts_its_timeout_is_not_empty(rig):
    r = rig(watch_max_seconds=0.3, empty_seconds=0.2)
    r.api.bookmark_on_close = False
    r.watcher.step(r.state)
    r.api.script("hold", "hold", "hold")

    outcomes = [r.watcher.step(r.state) for _ in range(3)]

    assert outcomes == [Outcome.WATCHED] * 3


def test_a_dropped_connection_loses_nothing_and_repeats_nothing(rig):
    r = rig()
    r.watcher.step(r.state)
    for i in range(5):
        r.api.create("BackOff", object_name=f"web-{i}")
    r.api.script(Script("drop", after=2))

    with pytest.raises(urllib3.exceptions.HTTPError):
        r.watcher.step(r.state)
    assert len(r.sent) == 2
    r.api.script(Script("close", after=3))
    assert r.watcher.step(r.state) is Outcome.WATCHED

    assert len(r.versions()) == len(set(r.versions())) == 5
    assert r.watched_from()[1] == r.versions()[1]


def test_modified_events_are_forwarded_while_fresh(rig):
    r = rig()
    r.watcher.step(r.state)
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    repeating = r.api.create("BackOff", object_name="web-0", when=hour_ago)
    touched = r.api.create("BackOff", object_name="web-1", when=hour_ago)
    r.api.repeat(repeating)  # count 2, last seen now: a new occurrence
    r.api.repeat(touched, when=hour_ago)  # changed, but nothing happened again
    r.api.delete(repeating)
    r.api.script(Script("close", after=5))

    r.watcher.step(r.state)

    assert [
        (json.loads(m.data)["regarding"]["name"], json.loads(m.data)["deprecatedCount"])
        for m in r.sent
    ] == [("web-0", 2)]
    assert r.metrics.seen == {"ADDED": 2, "MODIFIED": 2, "DELETED": 1}
    assert r.metrics.filtered == {"stale": 3, "deleted": 1}


def test_namespaced_core_v1_watch_uses_the_namespaced_path(rig):
    r = rig(api=CORE_API, namespaces="shop")
    r.api.create("BackOff", namespace="shop")
    r.api.create("BackOff", namespace="payments")

    r.watcher.step(r.state)

    assert {q.path for q in r.api.requests} == {"/api/v1/namespaces/shop/events"}
    assert len(r.sent) == 1
    assert r.sent[0].attributes["khook.api"] == "v1"


def test_a_silent_stuck_watch_is_cut_well_inside_the_liveness_limit_and_resumes(rig):
    # A quarter of dead_after for timeoutSeconds (1 s), as much again of silence before the
    # cut: the stream the server holds open and silent forever is dropped after 2 s.
    r = rig(stalls=1, watch_timeout=300, dead_after=4.0)
    r.watcher.step(r.state)
    listed_at, contact = r.state.resource_version, r.state.last_alive
    began = time.monotonic()

    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        r.watcher.step(r.state)

    assert 2.0 <= time.monotonic() - began < 3.0
    assert r.api.watch_requests()[0].query["timeoutSeconds"] == "1"
    assert r.state.last_alive == contact  # an open, silent stream is no sign of life
    assert not r.state.in_flight
    created = r.api.create("BackOff")
    assert r.watcher.step(r.state) is Outcome.WATCHED
    assert r.watched_from() == [listed_at, listed_at]
    assert r.state.last_alive > contact
    assert json.loads(r.sent[-1].data)["metadata"]["uid"] == created["metadata"]["uid"]


@pytest.fixture
def loop(rig) -> Iterator[Callable[[Rig], threading.Event]]:
    threads: list[tuple[threading.Thread, threading.Event, Rig]] = []

    def start(r: Rig) -> threading.Event:
        stop = threading.Event()
        thread = threading.Thread(
            target=run_watch_loop,
            daemon=True,
            kwargs={
                "watcher": r.watcher,
                "state": r.state,
                "stop": stop,
                "backoff": Backoff(0.05, 0.2),
                "metrics": r.metrics,
            },
        )
        thread.start()
        threads.append((thread, stop, r))
        return stop

    yield start
    for thread, stop, r in threads:
        stop.set()
        r.watcher.stop()
        thread.join(5)
        assert not thread.is_alive()


def test_the_loop_rides_out_every_failure_and_loses_nothing(rig, loop):
    r = rig(watch_max_seconds=0.5, overlap=30.0)
    r.api.script(
        "error-http",
        Script("drop", after=1),
        "empty",
        Script("close", after=2),
        "gone",
        "empty",
        "empty",
    )
    loop(r)
    r.api.wait_for(lambda: r.state.listed)
    created = {r.api.create("BackOff", object_name=f"web-{i}")["metadata"]["uid"] for i in range(8)}

    r.api.wait_for(
        lambda: (
            r.metrics.relists >= 1
            and r.state.listed
            and created <= {json.loads(m.data)["metadata"]["uid"] for m in r.sent}
        ),
        timeout=15,
    )

    assert r.metrics.api_errors >= 2  # the HTTP 500 and the dropped connection
    watched = [q for q in r.api.watch_requests() if q.query["resourceVersion"]]
    assert len(watched) >= 5
    # Before the re-list every resume started after the last forwarded event: no repeats.
    first_relist = (
        next(i for i, m in enumerate(r.sent) if r.sent.index(m) != i)
        if len({m.data for m in r.sent}) != len(r.sent)
        else len(r.sent)
    )
    before = r.versions()[:first_relist]
    assert len(before) == len(set(before))


def test_stop_interrupts_a_quiet_watch_at_once(rig, loop):
    r = rig()
    r.api.script("hold")
    stop = loop(r)
    r.api.wait_for(lambda: r.state.in_flight)

    stop.set()
    r.watcher.stop()

    r.api.wait_for(lambda: not r.state.in_flight, timeout=3)
