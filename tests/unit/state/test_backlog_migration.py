"""Backlogs written before their key's kind was stored are read back with typed keys."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from khook_core.state.sqlite import SCHEMA_VERSION, SqliteStateStore
from khook_core.storm.records import Backlog, BacklogKey, BacklogKind, Summary

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
HELD = Backlog(Summary(count=3, first=T0, last=T0), hook="shop/web", event='{"id": "e"}')


def write_version_3_file(path: Path) -> None:
    """A state file as schema version 3 left it: backlogs keyed by their string alone."""
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE backlog (key TEXT PRIMARY KEY, summary TEXT NOT NULL);"
        "PRAGMA user_version = 3;"
    )
    for key in ("coalesce|shop/web|pod-restart|shop/web", "budget|shop/web|pod-restart"):
        db.execute("INSERT INTO backlog VALUES (?, ?)", (key, json.dumps(HELD.to_json())))
    db.commit()
    db.close()


def test_a_version_3_file_keeps_its_backlogs_under_typed_keys(tmp_path: Path):
    path = tmp_path / "state.db"
    write_version_3_file(path)

    store = SqliteStateStore(path)
    group = BacklogKey(BacklogKind.GROUP, "shop/web|pod-restart|shop/web")
    budget = BacklogKey(BacklogKind.BUDGET, "shop/web|pod-restart")

    assert SCHEMA_VERSION == 4
    assert sorted(store.backlog_keys(limit=10)) == [budget, group]
    assert store.take_backlog(key=group) == HELD  # same stored key: the data stays valid
    store.add_backlog(key=budget, backlog=HELD)
    assert store.backlog_keys(limit=10) == [budget]
    store.close()
    reopened = SqliteStateStore(path)
    assert reopened.backlog_keys(limit=10) == [budget]
    reopened.close()


def test_typed_keys_store_the_strings_backlogs_always_had():
    assert BacklogKey(BacklogKind.GROUP, "h|t|g").stored == "coalesce|h|t|g"
    assert BacklogKey(BacklogKind.BUDGET, "h|t").stored == "budget|h|t"
    for stored in ("coalesce|h|t|g", "budget|h|t"):
        assert BacklogKey.from_stored(stored).stored == stored
