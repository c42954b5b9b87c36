"""Which of the SQLite config store's commits wait for the disk: a push's; not the table's
creation nor the bootstrap's, which a power cut may lose at no cost (the next handle creates
the table again, the next start bootstraps again), and which a cold start on an empty store
would otherwise wait for (an fsync each, and one of the directory)."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from khook_core.state import sqlite_table
from khook_core.state.config_sqlite import SqliteConfigStore
from khook_core.state.sqlite import connect

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
FULL, NORMAL = 2, 1
_LEVEL = re.compile(r"PRAGMA synchronous = (\w+)", re.IGNORECASE)
_LEVELS = {"FULL": FULL, "2": FULL, "NORMAL": NORMAL, "1": NORMAL}


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement the store's own connection runs, from its opening on."""
    seen: list[str] = []

    def traced(path: Path) -> sqlite3.Connection:
        db = connect(path)
        db.set_trace_callback(seen.append)
        return db

    monkeypatch.setattr(sqlite_table, "connect", traced)
    return seen


def levels_at(statements: list[str], pattern: str) -> list[int]:
    """The ``synchronous`` level in force at each statement matching ``pattern``."""
    level, found = FULL, []  # SQLite's default, which the connection starts with
    for sql in statements:
        changed = _LEVEL.search(sql)
        if changed:
            level = _LEVELS[changed.group(1).upper()]
        elif re.search(pattern, sql, re.IGNORECASE):
            found.append(level)
    return found


def publish(store: SqliteConfigStore, expect: int | None) -> int | None:
    return store.publish_config(
        files={"hooks/a.yaml": "kind: Hook\n"},
        origin="files" if expect == 0 else "push",
        hooks=1,
        digest="d",
        now=NOW,
        expect=expect,
    )


def level_now(store: SqliteConfigStore) -> int:
    """The connection's level between writes."""
    (level,) = store._db.execute("PRAGMA synchronous").fetchone()
    return int(level)


def test_only_a_push_waits_for_the_disk(tmp_path: Path, statements: list[str]):
    store = SqliteConfigStore(tmp_path / "state.db")
    try:
        assert levels_at(statements, r"CREATE TABLE") == [NORMAL]
        assert level_now(store) == FULL

        statements.clear()
        assert publish(store, expect=0) == 1  # the bootstrap
        assert levels_at(statements, r"^COMMIT") == [NORMAL]
        assert level_now(store) == FULL

        statements.clear()
        assert publish(store, expect=None) == 2
        assert publish(store, expect=2) == 3
        assert levels_at(statements, r"^COMMIT") == [FULL, FULL]
    finally:
        store.close()
