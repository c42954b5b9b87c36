"""The TaskStore contract, run against memory, SQLite and the Firestore emulator.

Each test gets ``new_tasks``: another handle on the one store under test (the one in-memory
store, a connection each to one SQLite file, a client each on one emulator database), which is
how concurrent sweep ticks and push notifications meet.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from khook_core.state import open_task_store
from khook_core.state.base import NEVER, DedupKey, TaskStore, TrackedTask
from khook_core.state.task_memory import MemoryTaskStore

from .conftest import BACKENDS

NOW = datetime(2026, 1, 5, 10, 0, 30, 123456, tzinfo=UTC)
LEASE = timedelta(minutes=1)

NewTasks = Callable[[], TaskStore]


@pytest.fixture(params=BACKENDS)
def new_tasks(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NewTasks]:
    opened: list[TaskStore] = []
    if request.param == "memory":
        shared = MemoryTaskStore()

        def new() -> TaskStore:
            return shared
    else:
        if request.param == "firestore":
            request.getfixturevalue("firestore_store")  # the emulator, its database emptied
        url = f"sqlite:{tmp_path / 'state.db'}" if request.param == "sqlite" else "firestore"

        def new() -> TaskStore:
            store = open_task_store(url)
            opened.append(store)
            return store

    yield new
    for store in opened:
        store.close()


def task(task_id: str = "t-1", *, due: datetime = NOW, **changes: object) -> TrackedTask:
    base = TrackedTask(
        task_id=task_id,
        endpoint="http://agent.test/api/a2a/kagent/k8s-agent/",
        wire="1.0",
        context_id="khook-ctx «é»",
        key=DedupKey("shop/web:pod-restart:Pod/shop/web-0"),
        hook="shop/web",
        event_id="k8s:1",
        event_type="pod-restart",
        source="kubernetes",
        resource="shop/Pod/web-0",
        agent="kagent/k8s-agent",
        state="submitted",
        created_at=NOW - timedelta(seconds=5),
        deadline=NOW + timedelta(hours=1),
        next_check=due,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_a_tracked_task_reads_back_whole_with_version_one_on_every_handle(new_tasks: NewTasks):
    writer, reader = new_tasks(), new_tasks()
    wanted = task(cancel=True, push_token_hash="ab" * 32, tokens="1200")
    assert writer.track_task(task=wanted) is True

    got = reader.read_task(ref=wanted.ref)
    assert got == dataclasses.replace(wanted, version=1)


def test_tracking_the_same_task_again_changes_nothing(new_tasks: NewTasks):
    store = new_tasks()
    assert store.track_task(task=task()) is True
    assert store.track_task(task=task(state="working")) is False
    got = store.read_task(ref=task().ref)
    assert got is not None
    assert (got.state, got.version) == ("submitted", 1)


def test_due_tasks_are_the_unfinished_ones_due_by_now_earliest_first(new_tasks: NewTasks):
    store = new_tasks()
    store.track_task(task=task("late", due=NOW + timedelta(seconds=1)))
    store.track_task(task=task("second", due=NOW - timedelta(seconds=1)))
    store.track_task(task=task("first", due=NOW - timedelta(seconds=2)))
    store.track_task(task=task("done", due=NEVER, state="completed"))

    due = store.due_tasks(now=NOW, limit=10, lease=LEASE)

    assert [t.task_id for t in due] == ["first", "second"]
    assert all(t.next_check == NOW + LEASE and t.version == 2 for t in due)
    assert store.due_tasks(now=NOW, limit=10, lease=LEASE) == []  # leased
    again = store.due_tasks(now=NOW + LEASE, limit=10, lease=LEASE)  # the lease lapsed
    assert [t.task_id for t in again] == ["late", "first", "second"]


def test_due_tasks_returns_at_most_limit(new_tasks: NewTasks):
    store = new_tasks()
    for n in range(5):
        store.track_task(task=task(f"t-{n}", due=NOW - timedelta(seconds=n)))
    assert [t.task_id for t in store.due_tasks(now=NOW, limit=2, lease=LEASE)] == ["t-4", "t-3"]
    assert store.due_tasks(now=NOW, limit=0, lease=LEASE) == []


def test_an_update_needs_the_version_read_and_a_finished_task_never_changes(
    new_tasks: NewTasks,
):
    store = new_tasks()
    store.track_task(task=task())
    [leased] = store.due_tasks(now=NOW, limit=1, lease=LEASE)
    working = dataclasses.replace(leased, state="working", checks=1)

    assert store.update_task(task=working, expect=leased.version - 1) is False  # stale
    assert store.update_task(task=working, expect=leased.version) is True
    done = dataclasses.replace(
        working,
        state="completed",
        finding="Root cause: OOM",
        finding_chars=15,
        finished_at=NOW,
        next_check=NEVER,
    )
    assert store.update_task(task=done, expect=leased.version) is False  # changed since
    assert store.update_task(task=done, expect=leased.version + 1) is True
    assert store.update_task(task=done, expect=leased.version + 2) is False  # finished
    got = store.read_task(ref=done.ref)
    assert got == dataclasses.replace(done, version=leased.version + 2)
    assert store.due_tasks(now=NEVER, limit=10, lease=LEASE) == []


def test_an_update_of_a_task_never_tracked_writes_nothing(new_tasks: NewTasks):
    store = new_tasks()
    assert store.update_task(task=task(), expect=1) is False
    assert store.read_task(ref=task().ref) is None


def test_concurrent_callers_lease_disjoint_tasks(new_tasks: NewTasks):
    first = new_tasks()
    for n in range(12):
        first.track_task(task=task(f"t-{n:02}", due=NOW - timedelta(seconds=n)))
    handles = [new_tasks() for _ in range(4)]
    barrier = threading.Barrier(len(handles))
    got: list[list[str]] = [[] for _ in handles]

    def tick(n: int) -> None:
        barrier.wait()
        got[n] = [t.task_id for t in handles[n].due_tasks(now=NOW, limit=5, lease=LEASE)]

    threads = [threading.Thread(target=tick, args=(n,)) for n in range(len(handles))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    every = [task_id for ids in got for task_id in ids]
    assert len(every) == len(set(every)) == 12


def test_of_concurrent_writers_of_one_transition_exactly_one_wins(new_tasks: NewTasks):
    first = new_tasks()
    first.track_task(task=task())
    [leased] = first.due_tasks(now=NOW, limit=1, lease=LEASE)
    handles = [new_tasks() for _ in range(4)]
    barrier = threading.Barrier(len(handles))
    wins: list[bool] = []

    def finish(n: int) -> None:
        done = dataclasses.replace(
            leased, state="completed", finding=f"writer {n}", next_check=NEVER, finished_at=NOW
        )
        barrier.wait()
        wins.append(handles[n].update_task(task=done, expect=leased.version))

    threads = [threading.Thread(target=finish, args=(n,)) for n in range(len(handles))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert sorted(wins) == [False, False, False, True]
