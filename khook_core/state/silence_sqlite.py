"""SQLite ``SilenceStore``: silences in their own table of the state file.

A handle of its own on the same file as ``SqliteStateStore`` (table ``silence``), so the
functions' read once an interval never waits behind the firing path's connection. Adding is
``INSERT OR IGNORE`` on the id (of two processes exactly one inserts); expiring is one
conditional ``UPDATE``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from khook_core.state.base import SilenceRecord
from khook_core.state.sqlite_table import SqliteTable

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS silence (
        id TEXT PRIMARY KEY,
        matcher TEXT NOT NULL,
        author TEXT NOT NULL,
        comment TEXT NOT NULL,
        starts_at REAL NOT NULL,
        ends_at REAL NOT NULL,
        created_at REAL NOT NULL,
        hook TEXT NOT NULL,
        source TEXT NOT NULL,
        drop_held INTEGER NOT NULL,
        expired_by TEXT NOT NULL
    )
    """,
)

_SELECT = (
    "SELECT id, matcher, author, comment, starts_at, ends_at, created_at, hook, source, "
    "drop_held, expired_by FROM silence"
)


class SqliteSilenceStore(SqliteTable):
    """Silences in the ``silence`` table of the state file."""

    kind = "silence"
    schema = _SCHEMA

    def add_silence(self, *, silence: SilenceRecord) -> tuple[SilenceRecord, bool]:
        s = silence
        with self._locked() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO silence (id, matcher, author, comment, starts_at, ends_at, "
                "created_at, hook, source, drop_held, expired_by) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    s.id,
                    s.matcher,
                    s.author,
                    s.comment,
                    s.starts_at.timestamp(),
                    s.ends_at.timestamp(),
                    s.created_at.timestamp(),
                    s.hook,
                    s.source,
                    int(s.drop),
                    s.expired_by,
                ),
            )
            created = cursor.rowcount == 1
        stored = self.get_silence(id=s.id)
        assert stored is not None  # inserted, or there before
        return stored, created

    def get_silence(self, *, id: str) -> SilenceRecord | None:
        with self._locked() as db:
            row = db.execute(_SELECT + " WHERE id = ?", (id,)).fetchone()
        return None if row is None else _record(row)

    def silences(self, *, now: datetime, include_expired: bool, limit: int) -> list[SilenceRecord]:
        # An ended silence has ends_at <= now: -inf lets every one through.
        after = float("-inf") if include_expired else now.timestamp()
        with self._locked() as db:
            rows = db.execute(
                _SELECT + " WHERE ends_at > ? ORDER BY ends_at DESC, id DESC LIMIT ?",
                (after, max(limit, 0)),
            ).fetchall()
        return [_record(row) for row in rows]

    def expire_silence(self, *, id: str, now: datetime, by: str) -> SilenceRecord | None:
        at = now.timestamp()
        with self._locked() as db:
            db.execute(
                "UPDATE silence SET ends_at = MAX(?, starts_at), expired_by = ? "
                "WHERE id = ? AND ends_at > ?",
                (at, by, id, at),
            )
        return self.get_silence(id=id)


def _record(row: tuple[Any, ...]) -> SilenceRecord:
    sid, matcher, author, comment, starts, ends, created, hook, source, drop, by = row
    return SilenceRecord(
        id=str(sid),
        matcher=str(matcher),
        author=str(author),
        comment=str(comment),
        starts_at=datetime.fromtimestamp(starts, UTC),
        ends_at=datetime.fromtimestamp(ends, UTC),
        created_at=datetime.fromtimestamp(created, UTC),
        hook=str(hook),
        source=str(source),
        drop=bool(drop),
        expired_by=str(by),
    )
