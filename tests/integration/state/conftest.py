"""The backends every state contract suite runs against: memory, SQLite, the Firestore emulator.

A test asks for ``store`` (one handle on an empty store) or ``contend`` (its body run at once
in several threads, each with its own handle on that same store: the one in-memory store, a
connection each to one SQLite file, a client each on one emulator database, which is how
separate processes and function instances contend). A new backend joins ``BACKENDS`` and
``new_handle`` and must then pass all four suites.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from khook_core.state.base import StateStore
from khook_core.state.memory import MemoryStateStore
from khook_core.state.sqlite import SqliteStateStore

BACKENDS = ["memory", "sqlite", pytest.param("firestore", marks=pytest.mark.integration)]

Body = Callable[[StateStore], list[Any]]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def new_handle(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[[], StateStore]]:
    """Opens another handle on the one store under test; all are closed after the test."""
    opened: list[StateStore] = []

    def track(store: StateStore) -> StateStore:
        opened.append(store)
        return store

    if backend == "memory":
        shared = MemoryStateStore()

        def new() -> StateStore:
            return shared
    elif backend == "sqlite":
        path = tmp_path / "state.db"

        def new() -> StateStore:
            return track(SqliteStateStore(path))
    else:
        from khook_core.state.firestore import FirestoreStateStore

        request.getfixturevalue("firestore_store")  # the emulator, its database emptied

        def new() -> StateStore:
            return track(FirestoreStateStore.from_url("firestore"))

    yield new
    for store in opened:
        store.close()


@pytest.fixture
def store(new_handle: Callable[[], StateStore]) -> StateStore:
    return new_handle()


@pytest.fixture
def contend(new_handle: Callable[[], StateStore]) -> Callable[[Body, int], list[Any]]:
    """``contend(body, n)``: ``body`` in ``n`` threads lined up on a barrier, each with its own
    handle; the results of all of them (an error in any thread fails the test)."""

    def run_all(body: Body, n: int) -> list[Any]:
        handles = [new_handle() for _ in range(n)]
        results: list[Any] = []
        errors: list[BaseException] = []
        barrier = threading.Barrier(n)

        def run(own: StateStore) -> None:
            try:
                barrier.wait(60)
                results.extend(body(own))
            except BaseException as exc:  # reported by the test, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(own,)) for own in handles]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        return results

    return run_all
