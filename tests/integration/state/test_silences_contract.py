"""The SilenceStore contract, run against memory, SQLite and the Firestore emulator.

Each test gets ``new_silences``: another handle on the one store under test (the one in-memory
store, a connection each to one SQLite file, a client each on one emulator database). The
two-process race runs real processes on the Firestore emulator.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from khook_core.event import Event
from khook_core.state import open_silence_store
from khook_core.state.base import SilenceRecord, SilenceStore, StateStore
from khook_core.state.silence_memory import MemorySilenceStore
from khook_core.storm import keys, records
from khook_core.storm.records import BacklogKind

from .conftest import BACKENDS

NOW = datetime(2026, 1, 5, 10, 0, 30, tzinfo=UTC)

NewSilences = Callable[[], SilenceStore]


@pytest.fixture(params=BACKENDS)
def new_silences(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NewSilences]:
    opened: list[SilenceStore] = []
    if request.param == "memory":
        shared = MemorySilenceStore()

        def new() -> SilenceStore:
            return shared
    else:
        if request.param == "firestore":
            request.getfixturevalue("firestore_store")  # the emulator, its database emptied
        url = f"sqlite:{tmp_path / 'state.db'}" if request.param == "sqlite" else "firestore"

        def new() -> SilenceStore:
            store = open_silence_store(url)
            opened.append(store)
            return store

    yield new
    for store in opened:
        store.close()


def silence(id: str = "s1", *, hours: float = 2, start: timedelta = timedelta(0)) -> SilenceRecord:
    return SilenceRecord(
        id=id,
        matcher='event.resource.namespace == "payments"',
        author="ana",
        comment="db migration «payments»",
        starts_at=NOW + start,
        ends_at=NOW + start + timedelta(hours=hours),
        created_at=NOW,
        hook="payments/db",
        source="kubernetes",
        drop=True,
    )


def test_an_added_silence_reads_back_whole_on_every_handle(new_silences: NewSilences):
    writer, reader = new_silences(), new_silences()
    stored, created = writer.add_silence(silence=silence())
    assert created
    assert stored == silence()
    assert reader.get_silence(id="s1") == silence()
    assert reader.silences(now=NOW, include_expired=False, limit=10) == [silence()]


def test_adding_an_existing_id_keeps_the_first_and_says_so(new_silences: NewSilences):
    store = new_silences()
    store.add_silence(silence=silence())
    other = dataclasses.replace(silence(), comment="someone else", author="bo")
    stored, created = new_silences().add_silence(silence=other)
    assert not created
    assert stored == silence()


def test_a_listing_leaves_out_what_ended_unless_asked_latest_end_first(
    new_silences: NewSilences,
):
    store = new_silences()
    for record in (
        silence("short", hours=1),
        silence("long", hours=2.5),
        silence("later", start=timedelta(hours=1)),
        silence("over", hours=1, start=timedelta(hours=-2)),
    ):
        store.add_silence(silence=record)
    current = new_silences().silences(now=NOW, include_expired=False, limit=10)
    assert [s.id for s in current] == ["later", "long", "short"]
    everything = new_silences().silences(now=NOW, include_expired=True, limit=10)
    assert [s.id for s in everything] == ["later", "long", "short", "over"]
    assert [s.id for s in store.silences(now=NOW, include_expired=True, limit=2)] == [
        "later",
        "long",
    ]
    assert [s.active_at(NOW) for s in current] == [False, True, True]


def test_expiring_ends_a_silence_at_now_and_records_who(new_silences: NewSilences):
    store = new_silences()
    store.add_silence(silence=silence())
    later = NOW + timedelta(minutes=30)
    expired = new_silences().expire_silence(id="s1", now=later, by="bo")
    assert expired is not None
    assert (expired.ends_at, expired.expired_by) == (later, "bo")
    assert store.get_silence(id="s1") == expired
    assert store.silences(now=later, include_expired=False, limit=10) == []
    # Expiring again, or after its end, changes nothing.
    assert store.expire_silence(id="s1", now=later + timedelta(hours=1), by="cy") == expired


def test_expiring_an_unknown_silence_answers_none(new_silences: NewSilences):
    assert new_silences().expire_silence(id="nope", now=NOW, by="bo") is None
    assert new_silences().get_silence(id="nope") is None


def test_of_concurrent_adds_of_one_silence_exactly_one_creates_it(new_silences: NewSilences):
    handles = [new_silences() for _ in range(4)]
    outcomes: list[tuple[SilenceRecord, bool]] = []
    barrier = threading.Barrier(len(handles))

    def run(own: SilenceStore, i: int) -> None:
        barrier.wait(60)
        outcomes.append(own.add_silence(silence=dataclasses.replace(silence(), author=f"a{i}")))

    threads = [threading.Thread(target=run, args=(h, i)) for i, h in enumerate(handles)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(created for _, created in outcomes) == [False, False, False, True]
    winner = next(record for record, created in outcomes if created)
    assert {record for record, _ in outcomes} == {winner}
    assert new_silences().silences(now=NOW, include_expired=True, limit=10) == [winner]


def _add_in_process(author: str, barrier: object, results: object) -> None:
    """One of two processes adding the same silence (spawned: its own client and channel)."""
    from khook_core.state import open_silence_store

    store = open_silence_store("firestore")
    store.get_silence(id="warm-up")  # open the channel before the start line
    barrier.wait(60)  # type: ignore[attr-defined]
    record, created = store.add_silence(silence=dataclasses.replace(silence(), author=author))
    store.close()
    results.put((record.author, created))  # type: ignore[attr-defined]


@pytest.mark.integration
def test_two_processes_adding_one_silence_on_firestore_store_it_once(
    firestore_store: object,
):
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_add_in_process, args=(author, barrier, results))
        for author in ("ana", "bo")
    ]
    for proc in procs:
        proc.start()
    try:
        outcomes = [results.get(timeout=120) for _ in procs]
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
    assert sorted(created for _, created in outcomes) == [False, True]
    winner = next(author for author, created in outcomes if created)
    assert {author for author, _ in outcomes} == {winner}  # the loser got the winner's record
    stored = open_silence_store("firestore")
    try:
        assert [s.author for s in stored.silences(now=NOW, include_expired=True, limit=10)] == [
            winner
        ]
    finally:
        stored.close()


def test_what_a_silence_holds_back_is_a_backlog_of_its_own_kind(store: StateStore):
    key = keys.silence_backlog("window:sunday@2026-01-04T01:00:00+00:00", "shop/web")
    event = Event.model_validate(
        {
            "id": "e1",
            "source": "kubernetes",
            "type": "pod-restart",
            "resource": {"kind": "Pod", "name": "web-0", "namespace": "shop"},
            "timestamp": NOW,
        }
    )
    store.add_backlog(key=key, backlog=records.backlog_of("shop/web", event))
    store.add_backlog(key=key, backlog=records.backlog_of("shop/web", event))
    [listed] = store.backlog_keys(limit=10)
    assert listed == key
    assert listed.kind is BacklogKind.SILENCE
    assert keys.muting_of(listed) == "window:sunday@2026-01-04T01:00:00+00:00"
    taken = store.take_backlog(key=listed)
    assert taken is not None
    assert taken.summary.count == 2
