"""SQLite ``TaskStore``: tracked tasks in the state file, table ``tracked_task``.

A handle of its own on the same file as ``SqliteStateStore``, so the tracker never waits
behind the firing path's connection. The task is one JSON document beside the two columns the
work list needs (``next_check``, indexed, and ``version``); every write is one conditional
statement or one ``BEGIN IMMEDIATE`` transaction, so concurrent processes on the file agree.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from typing import Any

from khook_core.state import task_fields
from khook_core.state.base import TrackedTask
from khook_core.state.sqlite_table import SqliteTable

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS tracked_task (
        ref TEXT PRIMARY KEY,
        next_check REAL NOT NULL,
        finished INTEGER NOT NULL,
        version INTEGER NOT NULL,
        doc TEXT NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS tracked_task_due ON tracked_task (next_check)",
)


class SqliteTaskStore(SqliteTable):
    """Tracked tasks in the SQLite state file."""

    kind = "task"
    schema = _SCHEMA

    def track_task(self, *, task: TrackedTask) -> bool:
        row = _row(task, version=1)
        with self._locked() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO tracked_task (ref, next_check, finished, version, doc) "
                "VALUES (?, ?, ?, ?, ?)",
                row,
            )
        return cursor.rowcount == 1

    def due_tasks(self, *, now: datetime, limit: int, lease: timedelta) -> list[TrackedTask]:
        if limit <= 0:
            return []
        until = (now + lease).timestamp()
        taken: list[TrackedTask] = []
        with self._transaction() as db:
            rows = db.execute(
                "SELECT doc, version FROM tracked_task WHERE next_check <= ? AND finished = 0 "
                "ORDER BY next_check, ref LIMIT ?",
                (now.timestamp(), limit),
            ).fetchall()
            for doc, version in rows:
                task = _task(doc, version + 1)
                task = _leased(task, now + lease)
                db.execute(
                    "UPDATE tracked_task SET next_check = ?, version = ?, doc = ? WHERE ref = ?",
                    (until, version + 1, _doc(task), task.ref),
                )
                taken.append(task)
        return taken

    def update_task(self, *, task: TrackedTask, expect: int) -> bool:
        ref, next_check, finished, version, doc = _row(task, version=expect + 1)
        with self._locked() as db:
            cursor = db.execute(
                "UPDATE tracked_task SET next_check = ?, finished = ?, version = ?, doc = ? "
                "WHERE ref = ? AND version = ? AND finished = 0",
                (next_check, finished, version, doc, ref, expect),
            )
        return cursor.rowcount == 1

    def read_task(self, *, ref: str) -> TrackedTask | None:
        with self._locked() as db:
            row = db.execute(
                "SELECT doc, version FROM tracked_task WHERE ref = ?", (_text(ref),)
            ).fetchone()
        return None if row is None else _task(row[0], row[1])


def _leased(task: TrackedTask, until: datetime) -> TrackedTask:
    return dataclasses.replace(task, next_check=until)


def _text(value: str) -> str:
    """Lone surrogates cannot be bound as SQLite text: escaped, one-to-one."""
    return value.encode("utf-8", "surrogatepass").decode("utf-8", "backslashreplace")


def _doc(task: TrackedTask) -> str:
    doc: dict[str, Any] = task_fields.to_document(task)
    for name in task_fields.TIMES:
        if doc[name] is not None:
            doc[name] = doc[name].timestamp()
    doc.pop("version")
    # ensure_ascii: text with lone surrogates stays storable (escaped in the JSON).
    return json.dumps(doc, ensure_ascii=True, separators=(",", ":"))


def _row(task: TrackedTask, *, version: int) -> tuple[str, float, int, int, str]:
    return (
        _text(task.ref),
        task.next_check.timestamp(),
        int(task.finished),
        version,
        _doc(task),
    )


def _task(doc: str, version: int) -> TrackedTask:
    return task_fields.from_document({**json.loads(doc), "version": version})
