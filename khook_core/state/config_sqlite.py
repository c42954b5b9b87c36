"""SQLite ``ConfigStore``: the snapshot in the state file, one row, written under the lock.

A handle of its own on the same file as ``SqliteStateStore`` (table ``config_snapshot``), so
the reloader never waits behind the firing path's connection. Publishing is one
``BEGIN IMMEDIATE`` transaction: read the version, check ``expect``, write version + 1.

A push's commit waits for the disk; creating the table and the bootstrap (``expect=0``: a
first snapshot, the deployed files) do not (``unsynced``): a power cut that loses them leaves
the store without the table or empty, which the next handle creates again or the next start
bootstraps again. That spares a function's cold start on an empty store three fsyncs (its
connection's first commits, and the directory SQLite syncs with the first).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

from khook_core.state.base import ConfigSnapshot
from khook_core.state.sqlite_table import SqliteTable, unsynced

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS config_snapshot (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL,
        origin TEXT NOT NULL,
        published_at REAL NOT NULL,
        hooks INTEGER NOT NULL,
        digest TEXT NOT NULL,
        files TEXT NOT NULL
    )
    """,
)


class SqliteConfigStore(SqliteTable):
    """The current configuration snapshot in one row of the state file."""

    kind = "config"
    schema = _SCHEMA

    def _create(self, db: sqlite3.Connection) -> None:
        with unsynced(db):
            super()._create(db)

    def config_version(self) -> int:
        with self._locked() as db:
            row = db.execute("SELECT version FROM config_snapshot WHERE id = 1").fetchone()
        return 0 if row is None else int(row[0])

    def read_config(self) -> ConfigSnapshot | None:
        with self._locked() as db:
            row = db.execute(
                "SELECT version, origin, published_at, hooks, digest, files "
                "FROM config_snapshot WHERE id = 1"
            ).fetchone()
        if row is None:
            return None
        version, origin, published_at, hooks, digest, files = row
        return ConfigSnapshot(
            version=int(version),
            origin=str(origin),
            published_at=datetime.fromtimestamp(published_at, UTC),
            files={str(k): str(v) for k, v in json.loads(files).items()},
            hooks=int(hooks),
            digest=str(digest),
        )

    def publish_config(
        self,
        *,
        files: dict[str, str],
        origin: str,
        hooks: int,
        digest: str,
        now: datetime,
        expect: int | None = None,
    ) -> int | None:
        # ensure_ascii: text with lone surrogates stays storable (escaped in the JSON).
        body = json.dumps(files, ensure_ascii=True)
        with self._transaction(synced=expect != 0) as db:
            row = db.execute("SELECT version FROM config_snapshot WHERE id = 1").fetchone()
            version = 0 if row is None else int(row[0])
            if expect is not None and version != expect:
                return None
            db.execute(
                "INSERT OR REPLACE INTO config_snapshot "
                "(id, version, origin, published_at, hooks, digest, files) "
                "VALUES (1, ?, ?, ?, ?, ?, ?)",
                (version + 1, origin, now.timestamp(), hooks, digest, body),
            )
        return version + 1
