"""The ConfigStore contract, run against memory, SQLite and the Firestore emulator.

Each test gets ``new_config``: another handle on the one store under test (the one in-memory
store, a connection each to one SQLite file, a client each on one emulator database).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from khook_core.state import open_config_store
from khook_core.state.base import ConfigStore
from khook_core.state.config_memory import MemoryConfigStore

from .conftest import BACKENDS

NOW = datetime(2026, 1, 5, 10, 0, 30, tzinfo=UTC)
FILES = {
    "event-mappings.yaml": "mappings: []\n",
    "hooks/shop.yaml": "kind: Hook  # née «shop» \udcff\n",
}

NewConfig = Callable[[], ConfigStore]


@pytest.fixture(params=BACKENDS)
def new_config(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NewConfig]:
    opened: list[ConfigStore] = []
    if request.param == "memory":
        shared = MemoryConfigStore()

        def new() -> ConfigStore:
            return shared
    else:
        if request.param == "firestore":
            request.getfixturevalue("firestore_store")  # the emulator, its database emptied
        url = f"sqlite:{tmp_path / 'state.db'}" if request.param == "sqlite" else "firestore"

        def new() -> ConfigStore:
            store = open_config_store(url)
            opened.append(store)
            return store

    yield new
    for store in opened:
        store.close()


def publish(store: ConfigStore, origin: str = "push", **kwargs: object) -> int | None:
    files = kwargs.pop("files", FILES)
    return store.publish_config(
        files=files,  # type: ignore[arg-type]
        origin=origin,
        hooks=2,
        digest="d1",
        now=NOW,
        **kwargs,  # type: ignore[arg-type]
    )


def test_an_empty_store_has_version_zero_and_no_snapshot(new_config: NewConfig):
    store = new_config()
    assert store.config_version() == 0
    assert store.read_config() is None


def test_a_published_snapshot_reads_back_whole_on_every_handle(new_config: NewConfig):
    writer, reader = new_config(), new_config()
    assert publish(writer, "files") == 1

    assert reader.config_version() == 1
    snapshot = reader.read_config()
    assert snapshot is not None
    assert (snapshot.version, snapshot.origin, snapshot.hooks, snapshot.digest) == (
        1,
        "files",
        2,
        "d1",
    )
    assert snapshot.published_at == NOW
    assert snapshot.files == FILES


def test_each_publish_is_the_next_version_and_replaces_the_files(new_config: NewConfig):
    store = new_config()
    publish(store)
    assert publish(store, files={"plugins.yaml": "sources: {}\n"}) == 2
    snapshot = new_config().read_config()
    assert snapshot is not None
    assert snapshot.version == 2
    assert snapshot.files == {"plugins.yaml": "sources: {}\n"}


def test_a_publish_expecting_another_version_writes_nothing(new_config: NewConfig):
    store = new_config()
    assert publish(store, expect=0) == 1
    assert publish(store, "files", expect=0, files={}) is None
    snapshot = store.read_config()
    assert snapshot is not None
    assert (snapshot.version, snapshot.origin, snapshot.files) == (1, "push", FILES)
    assert publish(store, expect=1) == 2


def test_a_thousand_hooks_fit_in_one_snapshot(new_config: NewConfig):
    hooks = {
        f"hooks/team-{i:04d}.yaml": (
            f"apiVersion: kagent.dev/v1alpha2\nkind: Hook\nmetadata:\n  name: hook-{i}\n"
            f"  namespace: team-{i % 50}\nspec:\n  eventConfigurations:\n"
            f"  - eventType: pod-restart\n    agentRef:\n      name: agent-{i % 7}\n"
            f"    prompt: 'Pod {{{{.ResourceName}}}} restarted ({i}); find out why.'\n"
        )
        for i in range(1000)
    }
    store = new_config()
    publish(store, files=hooks)
    snapshot = new_config().read_config()
    assert snapshot is not None
    assert snapshot.files == hooks


def test_concurrent_publishers_get_distinct_versions(new_config: NewConfig):
    handles = [new_config() for _ in range(4)]
    versions: list[int | None] = []
    barrier = threading.Barrier(len(handles))

    def run(own: ConfigStore, i: int) -> None:
        barrier.wait(60)
        versions.append(publish(own, files={"n": str(i)}))

    threads = [threading.Thread(target=run, args=(h, i)) for i, h in enumerate(handles)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(v for v in versions if v is not None) == [1, 2, 3, 4]
    assert new_config().config_version() == 4


def test_of_concurrent_bootstraps_exactly_one_publishes(new_config: NewConfig):
    handles = [new_config() for _ in range(4)]
    versions: list[int | None] = []
    barrier = threading.Barrier(len(handles))

    def run(own: ConfigStore) -> None:
        barrier.wait(60)
        versions.append(publish(own, "files", expect=0))

    threads = [threading.Thread(target=run, args=(h,)) for h in handles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(versions, key=lambda v: v or 0) == [None, None, None, 1]
    assert new_config().config_version() == 1
