"""The ApprovalStore contract, run against memory, SQLite and the Firestore emulator.

Each test gets ``new_approvals``: another handle on the one store under test (the one in-memory
store, a connection each to one SQLite file, a client each on one emulator database), which is
how two people deciding from two machines contend.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from khook_core.state import open_approval_store
from khook_core.state.approval_memory import MemoryApprovalStore
from khook_core.state.base import ApprovalRecord, ApprovalStore

from .conftest import BACKENDS

NOW = datetime(2026, 1, 5, 10, 0, 30, tzinfo=UTC)
REQUEST = (
    '{"type":"tool_approval_request","tools":[{"id":"conf-1","name":"restart_pod",'
    '"args":{"name":"web-0"}}]}'
)

NewApprovals = Callable[[], ApprovalStore]


@pytest.fixture(params=BACKENDS)
def new_approvals(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NewApprovals]:
    opened: list[ApprovalStore] = []
    if request.param == "memory":
        shared = MemoryApprovalStore()

        def new() -> ApprovalStore:
            return shared
    else:
        if request.param == "firestore":
            request.getfixturevalue("firestore_store")  # the emulator, its database emptied
        url = f"sqlite:{tmp_path / 'state.db'}" if request.param == "sqlite" else "firestore"

        def new() -> ApprovalStore:
            store = open_approval_store(url)
            opened.append(store)
            return store

    yield new
    for store in opened:
        store.close()


def approval(
    id: str = "a1", *, opened: timedelta = timedelta(0), wait: float = 3600
) -> ApprovalRecord:
    at = NOW + opened
    return ApprovalRecord(
        id=id,
        task_ref=f"http://agent/api/a2a/kagent/k8s-agent/ task-{id}",
        task_id=f"task-{id}",
        context_id="ctx-1",
        endpoint="http://agent/api/a2a/kagent/k8s-agent/",
        wire="1.0",
        hook="shop/shop-restarts",
        key="shop/shop-restarts|pod-restart|shop/web-0",
        agent="kagent/k8s-agent",
        kind="tool_approval",
        request=REQUEST,
        text="Restarting «web-0» requires approval",
        opened_at=at,
        deadline=at + timedelta(seconds=wait),
    )


def test_an_approval_is_opened_once_and_read_back_whole(new_approvals: NewApprovals) -> None:
    store = new_approvals()
    first, created = store.open_approval(approval=approval())
    again, created_again = new_approvals().open_approval(
        approval=dataclasses.replace(approval(), text="another tick saw the same pause")
    )

    assert (created, created_again) == (True, False)
    assert first == again == dataclasses.replace(approval(), version=1)
    assert store.get_approval(id="a1") == first
    assert store.get_approval(id="nope") is None


def test_the_list_is_latest_first_and_open_only_leaves_out_the_decided(
    new_approvals: NewApprovals,
) -> None:
    store = new_approvals()
    for n in range(3):
        store.open_approval(approval=approval(f"a{n}", opened=timedelta(minutes=n)))
    stored = store.get_approval(id="a1")
    assert stored is not None
    decided = dataclasses.replace(
        stored, state="approved", decided_by="ana", decided_at=NOW, decision='{"x":1}'
    )
    assert store.update_approval(approval=decided, expect=stored.version)

    assert [a.id for a in store.approvals(open_only=False, limit=10)] == ["a2", "a1", "a0"]
    assert [a.id for a in store.approvals(open_only=True, limit=10)] == ["a2", "a0"]
    assert [a.id for a in store.approvals(open_only=False, limit=1)] == ["a2"]
    got = store.get_approval(id="a1")
    assert got is not None
    assert (got.state, got.decided_by, got.decided_at, got.version) == ("approved", "ana", NOW, 2)


def test_due_approvals_are_the_open_ones_past_their_deadline_earliest_first(
    new_approvals: NewApprovals,
) -> None:
    store = new_approvals()
    store.open_approval(approval=approval("late", wait=60))
    store.open_approval(approval=approval("later", wait=120))
    store.open_approval(approval=approval("future", wait=3600))
    store.open_approval(approval=approval("decided", wait=10))
    decided = store.get_approval(id="decided")
    assert decided is not None
    store.update_approval(
        approval=dataclasses.replace(decided, state="rejected"), expect=decided.version
    )

    due = store.due_approvals(now=NOW + timedelta(seconds=120), limit=10)

    assert [a.id for a in due] == ["late", "later"]
    assert [a.id for a in store.due_approvals(now=NOW + timedelta(seconds=120), limit=1)] == [
        "late"
    ]


def test_an_update_from_a_stale_read_changes_nothing(new_approvals: NewApprovals) -> None:
    store = new_approvals()
    stored, _ = store.open_approval(approval=approval())
    first = dataclasses.replace(stored, state="approved", decided_by="ana")
    second = dataclasses.replace(stored, state="rejected", decided_by="bob")

    assert store.update_approval(approval=first, expect=stored.version)
    assert not new_approvals().update_approval(approval=second, expect=stored.version)
    assert not store.update_approval(approval=approval("unknown"), expect=1)
    got = store.get_approval(id="a1")
    assert got is not None
    assert (got.state, got.decided_by) == ("approved", "ana")


def test_of_concurrent_deciders_exactly_one_decision_is_stored(
    new_approvals: NewApprovals,
) -> None:
    stored, _ = new_approvals().open_approval(approval=approval())
    handles = [new_approvals() for _ in range(4)]
    barrier = threading.Barrier(len(handles))
    won: list[str] = []

    def decide(n: int, store: ApprovalStore) -> None:
        read = store.get_approval(id="a1")
        assert read is not None
        barrier.wait(30)
        if store.update_approval(
            approval=dataclasses.replace(read, state="approved", decided_by=f"person-{n}"),
            expect=read.version,
        ):
            won.append(f"person-{n}")

    threads = [threading.Thread(target=decide, args=(n, h)) for n, h in enumerate(handles)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert len(won) == 1
    got = new_approvals().get_approval(id="a1")
    assert got is not None
    assert (got.decided_by, got.version) == (won[0], stored.version + 1)
