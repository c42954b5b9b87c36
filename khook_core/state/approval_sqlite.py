"""SQLite ``ApprovalStore``: approvals in the state file, table ``approval``.

One JSON document per approval beside the columns the queries need; every write is one
conditional statement, so concurrent processes on the file store one decision.
"""

from __future__ import annotations

import json
from datetime import datetime

from khook_core.errors import TransientError
from khook_core.state import approval_fields
from khook_core.state.base import ApprovalRecord
from khook_core.state.sqlite_table import SqliteTable

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS approval (
        id TEXT PRIMARY KEY,
        open INTEGER NOT NULL,
        opened_at REAL NOT NULL,
        deadline REAL NOT NULL,
        version INTEGER NOT NULL,
        doc TEXT NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS approval_open ON approval (open, deadline)",
)


class SqliteApprovalStore(SqliteTable):
    """Approvals in the SQLite state file."""

    kind = "approval"
    schema = _SCHEMA

    def open_approval(self, *, approval: ApprovalRecord) -> tuple[ApprovalRecord, bool]:
        with self._locked() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO approval (id, open, opened_at, deadline, version, doc) "
                "VALUES (?, ?, ?, ?, 1, ?)",
                (
                    approval.id,
                    int(approval.is_open),
                    approval.opened_at.timestamp(),
                    approval.deadline.timestamp(),
                    _doc(approval),
                ),
            )
        stored = self.get_approval(id=approval.id)
        if stored is None:  # deleted in between: nothing deletes approvals
            raise TransientError(f"approval {approval.id} vanished after it was stored")
        return stored, cursor.rowcount == 1

    def get_approval(self, *, id: str) -> ApprovalRecord | None:
        with self._locked() as db:
            row = db.execute("SELECT doc, version FROM approval WHERE id = ?", (id,)).fetchone()
        return None if row is None else _approval(row[0], row[1])

    def approvals(self, *, open_only: bool, limit: int) -> list[ApprovalRecord]:
        with self._locked() as db:
            rows = db.execute(
                "SELECT doc, version FROM approval WHERE open >= ? "
                "ORDER BY opened_at DESC, id DESC LIMIT ?",
                (int(open_only), max(limit, 0)),
            ).fetchall()
        return [_approval(doc, version) for doc, version in rows]

    def due_approvals(self, *, now: datetime, limit: int) -> list[ApprovalRecord]:
        with self._locked() as db:
            rows = db.execute(
                "SELECT doc, version FROM approval WHERE open = 1 AND deadline <= ? "
                "ORDER BY deadline, id LIMIT ?",
                (now.timestamp(), max(limit, 0)),
            ).fetchall()
        return [_approval(doc, version) for doc, version in rows]

    def update_approval(self, *, approval: ApprovalRecord, expect: int) -> bool:
        with self._locked() as db:
            cursor = db.execute(
                "UPDATE approval SET open = ?, deadline = ?, version = ?, doc = ? "
                "WHERE id = ? AND version = ?",
                (
                    int(approval.is_open),
                    approval.deadline.timestamp(),
                    expect + 1,
                    _doc(approval),
                    approval.id,
                    expect,
                ),
            )
        return cursor.rowcount == 1


def _doc(approval: ApprovalRecord) -> str:
    doc = approval_fields.to_document(approval, epoch=True)
    doc.pop("version")
    return json.dumps(doc, ensure_ascii=True, separators=(",", ":"))


def _approval(doc: str, version: int) -> ApprovalRecord:
    return approval_fields.from_document({**json.loads(doc), "version": version})
