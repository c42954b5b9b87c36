"""SQLite claims across real processes: exactly one winner per key."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

from khook_core.state.base import DedupKey
from khook_core.state.sqlite import SqliteStateStore
from khook_core.storm.records import BacklogKey, BacklogKind

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
TTL = timedelta(minutes=10)


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


def test_sqlite_duplicates_are_answered_while_another_process_writes(tmp_path: Path):
    """A live claim the call leaves unchanged (another owner's, or ours still running), an
    empty backlog and a closed circuit are read, not taken under the file's write lock: a
    storm's duplicates never wait for a writer."""
    import sqlite3

    path = tmp_path / "state.db"
    store = SqliteStateStore(path)
    stale = timedelta(minutes=9)
    key, fresh = DedupKey("hook|kubernetes|pod-restart|shop/Pod/web-0|"), DedupKey("other")
    assert store.claim_firing(key=key, owner="a", ttl=TTL, now=T0, stale_after=stale) == "won"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        assert store.claim_firing(key=key, owner="b", ttl=TTL, now=T0, stale_after=stale) == "held"
        assert store.claim_firing(key=key, owner="a", ttl=TTL, now=T0, stale_after=stale) == "busy"
        # Storm control's per-firing steps that find nothing to change do not wait either.
        assert store.take_backlog(key=BacklogKey(BacklogKind.BUDGET, "hook|pod-restart")) is None
        store.record_success(key="circuit|kagent/k8s-agent")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    # What writes still takes the lock and reads the row again: a new claim, a resumed one.
    assert store.claim_firing(key=fresh, owner="b", ttl=TTL, now=T0, stale_after=stale) == "won"
    later = T0 + stale + timedelta(seconds=1)
    assert store.claim_firing(key=key, owner="a", ttl=TTL, now=later, stale_after=stale) == (
        "resumed"
    )
    store.close()
