"""SQLite claims across real processes: exactly one winner per key."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

from khook_core.state.base import DedupKey
from khook_core.state.sqlite import SqliteStateStore

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
