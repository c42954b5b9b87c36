"""SQLite counts a day of audit records from an index alone: the console's ``counts`` query
(a time range, grouped by bucket and the four counted fields) never reads the table's rows."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from khook_core.state import sqlite as sqlite_store
from khook_core.state.base import FiringFilter
from khook_core.state.sqlite import SqliteStateStore

SINCE = datetime(2026, 1, 5, tzinfo=UTC)


def plan_of(path: Path, where: FiringFilter) -> str:
    sql, params = sqlite_store._filtered(sqlite_store._COUNT_FIRINGS, where)
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "EXPLAIN QUERY PLAN " + sql + sqlite_store._GROUP_COUNTS, (1800, 1800, *params)
        ).fetchall()
    return "\n".join(str(row[-1]) for row in rows)


def test_a_days_counts_read_only_the_counts_index(tmp_path: Path):
    SqliteStateStore(tmp_path / "state.db").close()

    plan = plan_of(tmp_path / "state.db", FiringFilter(since=SINCE))

    assert "COVERING INDEX firings_counts" in plan, plan


def test_a_file_from_before_the_index_gains_it_when_opened(tmp_path: Path):
    path = tmp_path / "state.db"
    SqliteStateStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("DROP INDEX firings_counts")
        db.execute("PRAGMA user_version = 3")

    SqliteStateStore(path).close()

    assert "COVERING INDEX firings_counts" in plan_of(path, FiringFilter(since=SINCE))
