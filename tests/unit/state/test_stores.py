from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from khook_core.state import open_store
from khook_core.state.base import DedupKey, Firing, StateStore
from khook_core.state.memory import MemoryStateStore
from khook_core.state.sqlite import SqliteStateStore
from khook_core.storm.records import Backlog, BacklogKey, BacklogKind, Summary

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
TTL = timedelta(minutes=10)
K = DedupKey("shop/web|kubernetes|pod-restart|shop/Pod/web-0|")


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    s: StateStore = (
        MemoryStateStore() if request.param == "memory" else SqliteStateStore(tmp_path / "state.db")
    )
    yield s
    s.close()


def test_claim_is_granted_once_until_it_expires(store: StateStore):
    assert store.claim(key=K, ttl=TTL, now=T0)
    assert not store.claim(key=K, ttl=TTL, now=T0 + timedelta(minutes=9))
    assert store.claim(key=K, ttl=TTL, now=T0 + timedelta(minutes=10))


def test_release_lets_the_next_delivery_claim_again(store: StateStore):
    assert store.claim(key=K, ttl=TTL, now=T0)
    store.release(key=K)
    assert store.claim(key=K, ttl=TTL, now=T0 + timedelta(seconds=1))
    store.release(key=DedupKey("never-claimed"))  # idempotent


def test_confirm_keeps_the_claim(store: StateStore):
    assert store.claim(key=K, ttl=TTL, now=T0)
    store.confirm(key=K, outcome="dispatched", task_id="t-1")
    assert not store.claim(key=K, ttl=TTL, now=T0 + timedelta(minutes=1))


def test_firings_are_filtered_by_hook_and_time_newest_first(store: StateStore):
    for minute, hook in ((0, "shop/a"), (5, "shop/b"), (9, "shop/a")):
        store.record(
            Firing(
                key=K,
                hook=hook,
                event_id=f"e{minute}",
                event_type="pod-restart",
                source="kubernetes",
                resource="shop/Pod/web-0",
                agent="kagent/k8s",
                prompt_hash="h",
                outcome="dispatched",
                at=T0 + timedelta(minutes=minute),
                task_id=f"t{minute}",
            )
        )
    assert [f.event_id for f in store.firings()] == ["e9", "e5", "e0"]
    assert [f.event_id for f in store.firings(hook="shop/a")] == ["e9", "e0"]
    assert [f.event_id for f in store.firings(since=T0 + timedelta(minutes=4))] == ["e9", "e5"]
    assert store.firings(limit=1)[0].task_id == "t9"


def held(count: int, resource: str, at: datetime) -> Backlog:
    summary = Summary(count=count, first=at, last=at, resources=(resource,), reasons=("BackOff",))
    return Backlog(summary, hook="shop/web", event=f'{{"at": "{at.isoformat()}"}}')


GROUP_G = BacklogKey(BacklogKind.GROUP, "g")  # stored as "coalesce|g"
BUDGET_H = BacklogKey(BacklogKind.BUDGET, "h")  # stored as "budget|h"


def test_backlogs_merge_keep_the_latest_event_and_are_taken_once(store: StateStore):
    later = T0 + timedelta(minutes=3)
    store.add_backlog(key=GROUP_G, backlog=held(2, "shop/Pod/b", later))
    store.add_backlog(key=GROUP_G, backlog=held(3, "shop/Pod/a", T0))
    store.add_backlog(key=BUDGET_H, backlog=held(1, "shop/Pod/c", T0))
    assert sorted(store.backlog_keys(limit=10)) == [BUDGET_H, GROUP_G]
    assert len(store.backlog_keys(limit=1)) == 1

    taken = store.take_backlog(key=GROUP_G)

    assert taken is not None
    assert taken.summary == Summary(count=5, first=T0, last=later,
                                    resources=("shop/Pod/b", "shop/Pod/a"), reasons=("BackOff",))
    assert taken.event == held(2, "shop/Pod/b", later).event  # the latest, not the last added
    assert store.take_backlog(key=GROUP_G) is None
    assert store.backlog_keys(limit=10) == [BUDGET_H]


HOUR = timedelta(hours=1)
NOW = T0 + timedelta(seconds=30)  # inside the 10:00 window, not at its start


def test_slots_count_to_the_limit_within_one_window(store: StateStore):
    take = store.take_slot
    assert [take(key="rate|hook|a", limit=3, window=HOUR, now=NOW) for _ in range(4)] == [
        True,
        True,
        True,
        False,
    ]
    assert take(key="rate|hook|b", limit=3, window=HOUR, now=NOW)  # another key, its own count
    assert not take(key="rate|hook|c", limit=0, window=HOUR, now=NOW)
    assert not take(key="rate|hook|c", limit=0, window=HOUR, now=NOW + HOUR)


def test_slot_windows_are_aligned_to_the_clock_and_a_new_one_starts_afresh(store: StateStore):
    def take(at: datetime) -> bool:
        return store.take_slot(key="rate|agent|x", limit=2, window=HOUR, now=at)

    assert [take(NOW), take(NOW + timedelta(minutes=10))] == [True, True]
    assert not take(T0 + timedelta(minutes=59, seconds=59))  # still the 10:00 window
    # 11:00 starts a window although less than an hour has passed since the first slot, and
    # it has the whole limit again, not just one slot.
    at = T0 + HOUR
    assert [take(at), take(at), take(at + timedelta(minutes=30))] == [True, True, False]
    # Windows are per key: a window that started later for another key is its own.
    assert store.take_slot(key="rate|agent|y", limit=1, window=timedelta(minutes=10), now=at)
    assert not store.take_slot(
        key="rate|agent|y", limit=1, window=timedelta(minutes=10), now=at + timedelta(minutes=9)
    )
    assert store.take_slot(
        key="rate|agent|y", limit=1, window=timedelta(minutes=10), now=at + timedelta(minutes=10)
    )


def test_leases_cap_concurrent_runs_until_they_lapse(store: StateStore):
    ttl = timedelta(minutes=5)
    acquire = store.acquire_lease
    leases = [acquire(scope="runs", cap=2, ttl=ttl, now=NOW) for _ in range(3)]
    assert [bool(lease) for lease in leases] == [True, True, False]
    assert leases[0] != leases[1]
    assert acquire(scope="runs", cap=2, ttl=ttl, now=NOW + ttl)
    assert acquire(scope="none", cap=0, ttl=ttl, now=NOW) is None


def test_a_released_lease_is_free_again_and_a_retaken_one_is_not_released(store: StateStore):
    ttl = timedelta(minutes=5)
    first = store.acquire_lease(scope="runs", cap=1, ttl=ttl, now=NOW)
    assert first is not None
    assert store.acquire_lease(scope="runs", cap=1, ttl=ttl, now=NOW) is None

    store.release_lease(scope="runs", lease=first)
    second = store.acquire_lease(scope="runs", cap=1, ttl=ttl, now=NOW)

    assert second is not None
    store.release_lease(scope="runs", lease=first)  # long gone: must not free the new holder's
    assert store.acquire_lease(scope="runs", cap=1, ttl=ttl, now=NOW) is None


def test_a_returned_slot_can_be_taken_again_in_its_window_only(store: StateStore):
    def take(at: datetime) -> bool:
        return store.take_slot(key="rate|hook|a", limit=1, window=HOUR, now=at)

    assert take(NOW)
    assert not take(NOW)
    store.return_slot(key="rate|hook|a", window=HOUR, now=NOW)
    assert take(NOW + timedelta(minutes=1))  # the same window: the returned slot
    store.return_slot(key="rate|hook|a", window=HOUR, now=NOW - HOUR)  # another window: ignored
    assert not take(NOW + timedelta(minutes=2))
    store.return_slot(key="rate|hook|b", window=HOUR, now=NOW)  # never taken: stays at zero
    assert store.take_slot(key="rate|hook|b", limit=1, window=HOUR, now=NOW)
    assert not store.take_slot(key="rate|hook|b", limit=1, window=HOUR, now=NOW)


def test_a_clock_behind_cannot_reopen_an_earlier_window(store: StateStore):
    def take(at: datetime) -> bool:
        return store.take_slot(key="rate|agent|z", limit=1, window=HOUR, now=at)

    assert take(T0 + timedelta(minutes=59, seconds=59))
    assert take(T0 + HOUR + timedelta(seconds=1))  # the 11:00 window
    assert not take(T0 + timedelta(minutes=59, seconds=59))  # another instance, 2 s behind


def test_each_lease_lapses_on_its_own_after_its_ttl(store: StateStore):
    ttl = timedelta(minutes=5)

    def acquire(minutes: float, scope: str = "runs") -> bool:
        at = T0 + timedelta(minutes=minutes)
        return store.acquire_lease(scope=scope, cap=2, ttl=ttl, now=at) is not None

    assert [acquire(0), acquire(2), acquire(4.9)] == [True, True, False]
    assert acquire(4.9, scope="other")  # scopes are capped separately
    assert acquire(5)  # the first lapsed: one free lease, taken
    assert not acquire(6.9)  # the second is live until 7, the new one until 10
    assert acquire(7)
    assert not acquire(7)
    assert not acquire(9.9)
    assert [acquire(12), acquire(12), acquire(12)] == [True, True, False]  # all lapsed


def _own_store(backend: str, tmp_path: Path) -> Callable[[], StateStore]:
    """Stores for concurrent callers: the one shared in-memory store, or a connection each to
    one SQLite file (which is how separate processes contend)."""
    if backend == "memory":
        shared = MemoryStateStore()
        return lambda: shared
    path = tmp_path / "contended.db"
    SqliteStateStore(path).close()
    return lambda: SqliteStateStore(path)


def _in_threads(
    opener: Callable[[], StateStore], body: Callable[[StateStore], list[bool]], n: int = 4
) -> list[bool]:
    """``body`` in ``n`` threads lined up on a barrier, each with the store ``opener`` gives."""
    stores = [opener() for _ in range(n)]
    results: list[bool] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def run(own: StateStore) -> None:
        try:
            barrier.wait(60)
            results.extend(body(own))
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(own,)) for own in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for own in {id(s): s for s in stores}.values():
        own.close()
    assert not errors, errors
    return results


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_concurrent_slot_takers_never_exceed_the_limit(tmp_path: Path, backend: str):
    got = _in_threads(
        _own_store(backend, tmp_path),
        lambda s: [s.take_slot(key="rate|agent|x", limit=7, window=HOUR, now=NOW)
                   for _ in range(6)],
    )
    assert got.count(True) == 7


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_concurrent_lease_takers_get_exactly_the_cap(tmp_path: Path, backend: str):
    got = _in_threads(
        _own_store(backend, tmp_path),
        lambda s: [s.acquire_lease(scope="runs", cap=3, ttl=HOUR, now=NOW) is not None
                   for _ in range(4)],
    )
    assert got.count(True) == 3


def test_open_store_understands_its_urls(tmp_path: Path):
    assert isinstance(open_store("memory"), MemoryStateStore)
    sqlite = open_store(f"sqlite:{tmp_path}/x/state.db")
    assert isinstance(sqlite, SqliteStateStore)
    assert (tmp_path / "x" / "state.db").exists()
    with pytest.raises(Exception, match="unknown state store 'redis'"):
        open_store("redis")


def _race(path: str, keys: int, start: float, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    import time

    store = SqliteStateStore(path)
    while time.time() < start:
        time.sleep(0.001)
    won = [i for i in range(keys) if store.claim(key=DedupKey(f"k{i}"), ttl=TTL, now=T0)]
    queue.put(won)


def test_sqlite_claims_have_exactly_one_winner_across_real_processes(tmp_path: Path):
    import time

    path = str(tmp_path / "race.db")
    SqliteStateStore(path).close()  # create the schema before the race
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    start = time.time() + 1.5
    procs = [ctx.Process(target=_race, args=(path, 300, start, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    winners = [k for won in results for k in won]
    assert sorted(winners) == list(range(300))  # every key won, none twice
    assert len(results) == len(procs)


def test_sqlite_forgets_expired_claims_instead_of_keeping_every_key(tmp_path: Path):
    import sqlite3

    from khook_core.state.sqlite import PURGE_EVERY

    path = tmp_path / "state.db"
    store = SqliteStateStore(path)
    short = timedelta(seconds=1)
    for i in range(PURGE_EVERY):
        assert store.claim(key=DedupKey(f"old-{i}"), ttl=short, now=T0)
    later = T0 + timedelta(minutes=1)
    for i in range(PURGE_EVERY):
        assert store.claim(key=DedupKey(f"new-{i}"), ttl=TTL, now=later)
    store.close()

    with sqlite3.connect(path) as db:
        keys = [key for (key,) in db.execute("SELECT key FROM claims")]
    assert not any(key.startswith("old-") for key in keys)
    assert sum(key.startswith("new-") for key in keys) == PURGE_EVERY


def test_a_circuit_opens_at_the_threshold_is_half_open_after_its_cool_down_and_closes_on_success(
    store: StateStore,
):
    cool = timedelta(minutes=1)

    def fail(at: datetime) -> bool:
        return store.record_failure(key="circuit|a", threshold=2, cool_down=cool, now=at)

    assert store.circuit_state(key="circuit|a", now=T0) == "closed"
    assert [fail(T0), fail(T0)] == [False, True]
    assert store.circuit_state(key="circuit|a", now=T0 + timedelta(seconds=59)) == "open"
    assert store.circuit_state(key="circuit|a", now=T0 + cool) == "half-open"
    assert fail(T0 + cool)  # the probe failed: open again for a cool-down
    assert store.circuit_state(key="circuit|a", now=T0 + cool + timedelta(seconds=30)) == "open"
    store.record_success(key="circuit|a")
    assert store.circuit_state(key="circuit|a", now=T0 + cool) == "closed"
    assert not fail(T0 + cool)  # counts afresh



STALE = timedelta(seconds=50)


def check_a_claim_belongs_to_its_delivery(store: StateStore) -> None:
    """The rule of ``claim_firing``, the same for every store (the Firestore test calls it)."""
    mine, other = "owner-of-m-1", "owner-of-m-2"

    def claim(owner: str, at: datetime, key: DedupKey = K) -> str:
        return store.claim_firing(key=key, owner=owner, ttl=TTL, now=at, stale_after=STALE)

    assert claim(mine, T0) == "won"
    assert claim(other, T0 + timedelta(seconds=1)) == "held"  # another delivery: a duplicate
    assert claim(mine, T0 + timedelta(seconds=10)) == "busy"  # may still be running
    assert claim(mine, T0 + STALE) == "resumed"  # its attempt never reported back
    assert claim(mine, T0 + STALE + timedelta(seconds=1)) == "busy"  # the resumer runs now
    store.mark_uncertain(key=K)
    assert claim(other, T0 + STALE + timedelta(seconds=2)) == "held"
    assert claim(mine, T0 + STALE + timedelta(seconds=2)) == "uncertain"  # at once, ask first
    # Its attempt died again unmarked: still uncertain once stale (a send may have landed).
    assert claim(mine, T0 + 2 * STALE + timedelta(seconds=2)) == "uncertain"
    store.confirm(key=K, outcome="dispatched", task_id="t-1")
    assert claim(mine, T0 + 3 * STALE) == "held"  # confirmed: a duplicate, even for its owner
    assert claim(other, T0 + TTL) == "won"  # expired: a new window
    store.release(key=K)
    assert claim(other, T0 + TTL + timedelta(seconds=1)) == "won"
    plain = DedupKey("coalesce|shop/web|pod-restart|web")
    assert store.claim(key=plain, ttl=TTL, now=T0)
    assert claim(mine, T0 + STALE, plain) == "held"  # a plain claim is nobody's delivery


def test_a_claim_belongs_to_its_delivery(store: StateStore):
    check_a_claim_belongs_to_its_delivery(store)
