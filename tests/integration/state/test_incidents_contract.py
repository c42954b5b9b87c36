"""The IncidentStore contract, run against memory, SQLite and the Firestore emulator.

Each test gets ``new_incidents``: another handle on the one store under test. The race runs in
real processes (SQLite, Firestore) to show incidents open atomically across instances.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from khook_core.state import open_incident_store
from khook_core.state.base import IncidentStore
from khook_core.state.incident_memory import MemoryIncidentStore

from .conftest import BACKENDS

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=10)
CHECKOUT = "shop/Deployment/checkout"

NewIncidents = Callable[[], IncidentStore]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory"
    if request.param == "firestore":
        request.getfixturevalue("firestore_store")  # the emulator, its database emptied
        return "firestore"
    return f"sqlite:{tmp_path / 'state.db'}"


@pytest.fixture
def new_incidents(store_url: str) -> Iterator[NewIncidents]:
    opened: list[IncidentStore] = []
    shared = MemoryIncidentStore()

    def new() -> IncidentStore:
        if store_url == "memory":
            return shared
        store = open_incident_store(store_url)
        opened.append(store)
        return store

    yield new
    for store in opened:
        store.close()


def event(
    store: IncidentStore,
    member: str,
    at: datetime = NOW,
    workload: str = CHECKOUT,
    **kwargs: Any,
) -> Any:
    return store.correlate(workload=workload, member=member, window=WINDOW, now=at, **kwargs)


def test_the_first_event_opens_an_incident_and_later_ones_join_it(new_incidents: NewIncidents):
    store = new_incidents()
    first = event(store, "alertmanager/a1", hook="shop/crash", agent="kagent/k8s-agent")
    second = event(new_incidents(), "kubernetes/e1", NOW + timedelta(minutes=2), evidence="BackOff")
    third = event(store, "webhook/d1", NOW + timedelta(minutes=4), evidence="deploy failed")

    assert first.opened
    assert not second.opened
    assert not third.opened
    assert first.incident.id == second.incident.id == third.incident.id
    [incident] = new_incidents().incidents()
    assert incident.id == first.incident.id
    assert (incident.hook, incident.agent, incident.events) == ("shop/crash", "kagent/k8s-agent", 3)
    assert incident.pending == ("BackOff", "deploy failed")
    assert incident.opened_at == NOW
    assert incident.last_event_at == NOW + timedelta(minutes=4)
    assert incident.open


def test_a_redelivered_event_changes_nothing(new_incidents: NewIncidents):
    store = new_incidents()
    event(store, "a1")
    event(store, "e1", evidence="BackOff")
    again = event(new_incidents(), "e1", NOW + timedelta(minutes=1), evidence="BackOff")

    assert again.duplicate
    assert not again.opened
    [incident] = store.incidents()
    assert (incident.events, incident.pending) == (2, ("BackOff",))


def test_join_only_joins_an_open_incident_and_never_opens_one(new_incidents: NewIncidents):
    store = new_incidents()
    assert event(store, "e0", join_only=True) is None
    assert store.incidents() == []
    first = event(store, "a1")
    joined = event(new_incidents(), "e1", NOW + timedelta(minutes=1), join_only=True)
    after_quiet = event(store, "e2", NOW + timedelta(minutes=12), join_only=True)

    assert joined is not None
    assert joined.incident.id == first.incident.id
    assert not joined.opened
    assert after_quiet is None
    assert [i.events for i in store.incidents()] == [2]


def test_two_workloads_are_two_incidents(new_incidents: NewIncidents):
    store = new_incidents()
    a = event(store, "a1")
    b = event(store, "b1", workload="shop/StatefulSet/db")

    assert a.opened
    assert b.opened
    assert a.incident.id != b.incident.id
    assert [i.workload for i in store.incidents(workload="shop/StatefulSet/db")] == [
        "shop/StatefulSet/db"
    ]
    assert len(store.incidents(open_only=True)) == 2


def test_a_workload_quiet_past_the_window_gets_a_new_incident(new_incidents: NewIncidents):
    store = new_incidents()
    first = event(store, "a1")
    joined = event(store, "e1", NOW + timedelta(minutes=9))
    later = event(new_incidents(), "e2", NOW + timedelta(minutes=19, seconds=1))

    assert joined.incident.id == first.incident.id
    assert later.opened
    assert later.incident.id != first.incident.id
    newest, oldest = store.incidents(workload=CHECKOUT)
    assert newest.id == later.incident.id
    assert newest.open
    assert (oldest.id, oldest.close_reason) == (first.incident.id, "quiet")
    assert oldest.closed_at == NOW + timedelta(minutes=19)
    assert [i.id for i in store.incidents(open_only=True)] == [later.incident.id]


def test_an_incident_closes_when_every_firing_member_is_resolved(new_incidents: NewIncidents):
    store = new_incidents()
    event(store, "alert/a1", resolvable=True)
    event(store, "alert/a2", resolvable=True)
    event(store, "kubernetes/e1")  # a point event: never resolves, never holds it open

    still = store.resolve(workload=CHECKOUT, member="alert/a1", now=NOW + timedelta(minutes=1))
    assert still is not None
    assert still.open
    assert store.resolve(workload=CHECKOUT, member="nobody", now=NOW) is None
    done = new_incidents().resolve(
        workload=CHECKOUT, member="alert/a2", now=NOW + timedelta(minutes=3)
    )

    assert done is not None
    assert (done.close_reason, done.closed_at) == ("resolved", NOW + timedelta(minutes=3))
    assert store.incidents(open_only=True) == []
    assert event(store, "alert/a3", NOW + timedelta(minutes=4)).opened


def test_follow_ups_take_the_pending_evidence_at_most_once_an_interval(
    new_incidents: NewIncidents,
):
    store = new_incidents()
    interval = timedelta(minutes=2)
    event(store, "a1")
    assert store.take_follow_up(workload=CHECKOUT, interval=interval, now=NOW) is None
    event(store, "e1", NOW + timedelta(seconds=10), evidence="one")
    event(store, "e2", NOW + timedelta(seconds=20), evidence="two")

    taken = new_incidents().take_follow_up(
        workload=CHECKOUT, interval=interval, now=NOW + timedelta(seconds=30)
    )
    assert taken is not None
    incident, evidence = taken
    assert evidence == ("one", "two")
    assert (incident.pending, incident.follow_ups) == ((), 1)
    event(store, "e3", NOW + timedelta(seconds=40), evidence="three")
    too_soon = NOW + timedelta(minutes=2)
    assert store.take_follow_up(workload=CHECKOUT, interval=interval, now=too_soon) is None
    later = store.take_follow_up(
        workload=CHECKOUT, interval=interval, now=NOW + timedelta(minutes=2, seconds=30)
    )
    assert later is not None
    assert later[1] == ("three",)


def test_a_follow_up_that_could_not_be_sent_is_put_back_for_the_next_interval(
    new_incidents: NewIncidents,
):
    store = new_incidents()
    interval = timedelta(minutes=2)
    opened = event(store, "a1")
    event(store, "e1", NOW + timedelta(seconds=10), evidence="one")
    taken = store.take_follow_up(
        workload=CHECKOUT, interval=interval, now=NOW + timedelta(seconds=20)
    )
    assert taken is not None
    failed, evidence = taken
    event(store, "e2", NOW + timedelta(seconds=30), evidence="two")

    kept = new_incidents().requeue_follow_up(
        workload=CHECKOUT, incident=opened.incident.id, evidence=evidence, sent=failed.follow_ups
    )

    assert kept is not None
    assert (kept.pending, kept.follow_ups) == (("one", "two"), 0)
    # the interval counts from the failed attempt: the evidence waits for the next one
    assert (
        store.take_follow_up(workload=CHECKOUT, interval=interval, now=NOW + timedelta(minutes=2))
        is None
    )
    retried = store.take_follow_up(
        workload=CHECKOUT, interval=interval, now=NOW + timedelta(minutes=2, seconds=20)
    )
    assert retried is not None
    assert (retried[1], retried[0].follow_ups) == (("one", "two"), 1)
    # delivered: nothing is left to send again
    assert (
        store.take_follow_up(
            workload=CHECKOUT, interval=timedelta(0), now=NOW + timedelta(minutes=3)
        )
        is None
    )


def test_a_follow_up_is_not_put_back_into_a_closed_or_another_incident(
    new_incidents: NewIncidents,
):
    store = new_incidents()
    first = event(store, "a1")
    event(store, "e1", NOW + timedelta(seconds=10), evidence="one")
    taken = store.take_follow_up(workload=CHECKOUT, interval=WINDOW, now=NOW + timedelta(minutes=1))
    assert taken is not None
    store.close_quiet(now=NOW + timedelta(minutes=11), limit=10)

    assert (
        store.requeue_follow_up(
            workload=CHECKOUT, incident=first.incident.id, evidence=taken[1], sent=1
        )
        is None
    )
    second = event(store, "a2", NOW + timedelta(minutes=12))
    assert (
        store.requeue_follow_up(
            workload=CHECKOUT, incident=first.incident.id, evidence=taken[1], sent=1
        )
        is None
    )
    [current] = store.incidents(open_only=True)
    assert (current.id, current.pending) == (second.incident.id, ())


def test_put_back_evidence_keeps_the_cap(new_incidents: NewIncidents):
    store = new_incidents()
    opened = event(store, "a1")
    for n in range(10):
        event(store, f"e{n}", NOW + timedelta(seconds=n + 1), evidence=f"new {n}")

    kept = store.requeue_follow_up(
        workload=CHECKOUT,
        incident=opened.incident.id,
        evidence=tuple(f"old {n}" for n in range(45)),
        sent=1,
    )

    assert kept is not None
    assert len(kept.pending) == 50
    assert kept.pending[:1] + kept.pending[-1:] == ("old 0", "new 4")
    assert kept.omitted == 5


def test_evidence_past_the_cap_is_counted_not_kept_and_never_made(new_incidents: NewIncidents):
    store = new_incidents()
    event(store, "a1")
    made: list[int] = []

    def line(n: int) -> Callable[[], str]:
        def make() -> str:
            made.append(n)
            return f"event {n}"

        return make

    for n in range(60):
        event(store, f"e{n}", NOW + timedelta(seconds=n + 1), evidence=line(n))
    taken = store.take_follow_up(workload=CHECKOUT, interval=WINDOW, now=NOW + timedelta(minutes=2))

    assert taken is not None
    _, evidence = taken
    assert evidence[:2] == ("event 0", "event 1")
    assert len(evidence) == 51
    assert evidence[-1] == "... and 10 more event(s) like these, not listed"
    assert made == list(range(50))


def test_quiet_incidents_are_closed_by_the_sweep(new_incidents: NewIncidents):
    store = new_incidents()
    event(store, "a1")
    event(store, "b1", NOW + timedelta(minutes=8), workload="shop/StatefulSet/db")

    closed = new_incidents().close_quiet(now=NOW + timedelta(minutes=11), limit=10)

    assert [(i.workload, i.close_reason) for i in closed] == [(CHECKOUT, "quiet")]
    assert [i.workload for i in store.incidents(open_only=True)] == ["shop/StatefulSet/db"]


def test_an_incident_the_sweep_closed_stays_listed_after_a_new_one_opens(
    new_incidents: NewIncidents,
):
    store = new_incidents()
    first = event(store, "a1")
    store.close_quiet(now=NOW + timedelta(minutes=11), limit=10)
    second = event(store, "a2", NOW + timedelta(minutes=12))

    assert [i.id for i in new_incidents().incidents()] == [second.incident.id, first.incident.id]
    assert [i.close_reason for i in store.incidents()] == ["", "quiet"]


def test_concurrent_events_of_one_workload_open_exactly_one_incident(
    new_incidents: NewIncidents,
):
    handles = [new_incidents() for _ in range(4)]
    results: list[Any] = []
    barrier = threading.Barrier(len(handles))

    def run(own: IncidentStore, n: int) -> None:
        barrier.wait(60)
        for i in range(10):
            results.append(event(own, f"m{n}-{i}", NOW + timedelta(seconds=i)))

    threads = [threading.Thread(target=run, args=(h, n)) for n, h in enumerate(handles)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert len(results) == 40
    assert sum(r.opened for r in results) == 1
    assert len({r.incident.id for r in results}) == 1
    [incident] = handles[0].incidents()
    assert incident.events == 40


# --- across real processes ---------------------------------------------------------------------


def _racer(
    url: str, emulator: str, seed: int, events: list[tuple[str, str]], start: Any, results: Any
) -> None:
    """One instance (a spawned process): correlate its share of the events, report openings."""
    if emulator:
        os.environ["FIRESTORE_EMULATOR_HOST"] = emulator
    store = open_incident_store(url)
    try:
        random.Random(seed).shuffle(events)
        start.wait(120)
        opened = []
        for workload, member in events:
            result = store.correlate(workload=workload, member=member, window=WINDOW, now=NOW)
            assert result is not None
            if result.opened:
                opened.append((workload, result.incident.id))
        results.put(opened)
    finally:
        store.close()


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["sqlite", "firestore"])
def test_four_processes_racing_500_events_of_50_workloads_open_exactly_50_incidents(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
):
    emulator = ""
    if backend == "firestore":
        emulator = request.getfixturevalue("firestore_emulator").host
        request.getfixturevalue("firestore_store")  # the database emptied
        url = "firestore"
    else:
        url = f"sqlite:{tmp_path / 'state.db'}"
    events = [(f"shop/Deployment/app-{i % 50}", f"event-{i}") for i in range(500)]
    shares = [events[n::4] for n in range(4)]
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(4), ctx.Queue()
    procs = [
        ctx.Process(target=_racer, args=(url, emulator, n, share, start, results))
        for n, share in enumerate(shares)
    ]
    for proc in procs:
        proc.start()
    opened = [pair for _ in procs for pair in results.get(timeout=300)]
    for proc in procs:
        proc.join(60)

    assert len(opened) == 50
    assert {workload for workload, _ in opened} == {w for w, _ in events}
    store = open_incident_store(url)
    try:
        incidents = store.incidents(limit=1000)
    finally:
        store.close()
    assert len(incidents) == 50
    assert sum(i.events for i in incidents) == 500


def test_put_back_evidence_past_the_cap_is_counted_again_not_listed(new_incidents: NewIncidents):
    store = new_incidents()
    opened = event(store, "a1")
    for n in range(55):
        event(store, f"e{n}", NOW + timedelta(seconds=n + 1), evidence=f"event {n}")
    taken = store.take_follow_up(workload=CHECKOUT, interval=WINDOW, now=NOW + timedelta(minutes=2))
    assert taken is not None
    failed, evidence = taken
    assert evidence[-1] == "... and 5 more event(s) like these, not listed"

    kept = store.requeue_follow_up(
        workload=CHECKOUT, incident=opened.incident.id, evidence=evidence, sent=failed.follow_ups
    )
    retried = store.take_follow_up(
        workload=CHECKOUT, interval=WINDOW, now=NOW + timedelta(minutes=13)
    )

    assert kept is not None
    assert (len(kept.pending), kept.omitted) == (50, 5)
    assert retried is not None
    assert retried[1] == evidence  # the same follow-up again: one count line, not two


def test_an_incident_a_store_returned_never_changes_under_its_holder(
    new_incidents: NewIncidents,
):
    """A returned incident is a snapshot: later joins, resolutions and follow-ups change the
    store's incident, never one a caller already holds (even one it holds twice over)."""
    store = new_incidents()
    event(store, "alert/a1", resolvable=True)
    held = event(store, "e1", NOW + timedelta(seconds=1), evidence="line 1").incident
    also = event(store, "e1", NOW + timedelta(seconds=2), evidence="line 1").incident
    [listed] = store.incidents()
    seen = (dict(held.members), held.pending, held.events, held.omitted)

    for n in range(2, 260):
        event(store, f"e{n}", NOW + timedelta(seconds=n), evidence=f"line {n}")
    assert store.take_follow_up(workload=CHECKOUT, interval=WINDOW, now=NOW + timedelta(minutes=5))
    store.resolve(workload=CHECKOUT, member="alert/a1", now=NOW + timedelta(minutes=5))

    for incident in (held, also, listed):
        assert (dict(incident.members), incident.pending, incident.events, incident.omitted) == (
            seen
        )
        assert list(incident.members) == ["alert/a1", "e1"]
        assert incident.members["alert/a1"] == "firing"
        assert "e2" not in incident.members
        assert len(incident.members) == 2
    [now_held] = store.incidents()
    assert len(now_held.members) == 200
    assert now_held.members["alert/a1"] == "resolved"
    assert (now_held.events, now_held.pending, now_held.close_reason) == (260, (), "resolved")
