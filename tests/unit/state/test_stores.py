"""What is particular to one backend; the contracts every backend keeps are the suites in
tests/integration/state/."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from khook_core.state import audit_fields, open_store
from khook_core.state.base import DedupKey, Firing
from khook_core.state.memory import MemoryStateStore
from khook_core.state.sqlite import SqliteStateStore

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
TTL = timedelta(minutes=10)
K = DedupKey("shop/web|kubernetes|pod-restart|shop/Pod/web-0|")


def test_open_store_understands_its_urls(tmp_path: Path):
    assert isinstance(open_store("memory"), MemoryStateStore)
    sqlite = open_store(f"sqlite:{tmp_path}/x/state.db")
    assert isinstance(sqlite, SqliteStateStore)
    assert (tmp_path / "x" / "state.db").exists()
    with pytest.raises(Exception, match="unknown state store 'redis'"):
        open_store("redis")


def test_sqlite_forgets_expired_claims_instead_of_keeping_every_key(tmp_path: Path):
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


def test_an_sqlite_audit_trail_gains_a_column_for_each_field_added_to_firing(tmp_path: Path):
    path = tmp_path / "state.db"
    SqliteStateStore(path).close()
    with sqlite3.connect(path) as db:  # a file written before Firing had ``error`` (and later)
        db.execute("ALTER TABLE firings DROP COLUMN error")
        db.execute("ALTER TABLE firings DROP COLUMN config_version")
        db.execute("ALTER TABLE firings DROP COLUMN incident")
        db.execute(
            "INSERT INTO firings (at, key, hook, event_id, event_type, source, resource, agent, "
            "prompt_hash, outcome, task_id, extra) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                T0.timestamp(),
                K,
                "shop/web",
                "e0",
                "pod-restart",
                "kubernetes",
                "shop/Pod/web-0",
                "kagent/k8s",
                "h",
                "dispatched",
                "t0",
                "{}",
            ),
        )
    db.close()
    store = SqliteStateStore(path)
    try:
        [older] = store.firings()
        newer = Firing(**{**older.__dict__, "event_id": "e1", "error": "agent down"})
        store.record(newer)
        assert store.firings() == [newer, older]
    finally:
        store.close()
    assert older.error == ""  # written before the field existed: empty
    with sqlite3.connect(path) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(firings)")]
    db.close()
    assert set(audit_fields.COLUMNS) <= set(columns)
