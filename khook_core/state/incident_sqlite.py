"""SQLite ``IncidentStore``: incidents in the state file (table ``incidents``), each change one
``BEGIN IMMEDIATE`` transaction that reads the workload's current incident and writes the result.

A handle of its own on the state file, like ``SqliteConfigStore``. The workload is stored as a
digest column for the lookups (keys are any text, lone surrogates included) and in full inside
the JSON body.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from khook_core.state import incident_changes as changes
from khook_core.state.base import Correlation, Evidence, Incident
from khook_core.state.sqlite_table import SqliteTable

T = TypeVar("T")

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS incidents (
        id TEXT PRIMARY KEY,
        workload_key TEXT NOT NULL,
        opened_at REAL NOT NULL,
        is_open INTEGER NOT NULL,
        is_current INTEGER NOT NULL,
        body TEXT NOT NULL
    )
    """,
    "CREATE UNIQUE INDEX IF NOT EXISTS incidents_current ON incidents (workload_key) "
    "WHERE is_current = 1",
    "CREATE INDEX IF NOT EXISTS incidents_opened ON incidents (opened_at)",
)


def _key(workload: str) -> str:
    return hashlib.sha256(workload.encode("utf-8", "surrogatepass")).hexdigest()


def _body(incident: Incident) -> str:
    return json.dumps(changes.to_json(incident), ensure_ascii=True)


class SqliteIncidentStore(SqliteTable):
    """Incidents in the state file."""

    kind = "incident"
    schema = _SCHEMA

    @staticmethod
    def _current(db: sqlite3.Connection, workload: str) -> Incident | None:
        row = db.execute(
            "SELECT body FROM incidents WHERE workload_key = ? AND is_current = 1",
            (_key(workload),),
        ).fetchone()
        return None if row is None else changes.from_json(json.loads(row[0]))

    @staticmethod
    def _write(db: sqlite3.Connection, incident: Incident, *, current: bool) -> None:
        db.execute(
            "INSERT OR REPLACE INTO incidents "
            "(id, workload_key, opened_at, is_open, is_current, body) VALUES (?, ?, ?, ?, ?, ?)",
            (
                incident.id,
                _key(incident.workload),
                incident.opened_at.timestamp(),
                int(incident.open),
                int(current),
                _body(incident),
            ),
        )

    def correlate(
        self,
        *,
        workload: str,
        member: str,
        window: timedelta,
        now: datetime,
        hook: str = "",
        agent: str = "",
        resolvable: bool = False,
        evidence: Evidence = "",
        join_only: bool = False,
    ) -> Correlation | None:
        with self._transaction() as db:
            current = self._current(db, workload)
            changed = changes.correlate(
                current,
                workload=workload,
                member=member,
                window=window,
                now=now,
                hook=hook,
                agent=agent,
                resolvable=resolvable,
                evidence=evidence,
                join_only=join_only,
            )
            if changed is None:
                return None
            after, stale, result = changed
            if result.duplicate:
                return result
            if current is not None and after.id != current.id:
                self._write(db, stale or current, current=False)
            self._write(db, after, current=True)
        return result

    def _change(
        self, workload: str, change: Callable[[Incident | None], Incident | None]
    ) -> tuple[Incident | None, Incident | None]:
        with self._transaction() as db:
            current = self._current(db, workload)
            after = change(current)
            if after is not None:
                self._write(db, after, current=True)
        return current, after

    def resolve(self, *, workload: str, member: str, now: datetime) -> Incident | None:
        return self._change(workload, lambda c: changes.resolve(c, member=member, now=now))[1]

    def take_follow_up(
        self, *, workload: str, interval: timedelta, now: datetime
    ) -> tuple[Incident, tuple[str, ...]] | None:
        before, after = self._change(
            workload, lambda c: changes.take_follow_up(c, interval=interval, now=now)
        )
        if before is None or after is None:
            return None
        return after, changes.taken_evidence(before)

    def requeue_follow_up(
        self, *, workload: str, incident: str, evidence: tuple[str, ...], sent: int
    ) -> Incident | None:
        _, after = self._change(
            workload,
            lambda c: changes.requeue_follow_up(c, incident=incident, evidence=evidence, sent=sent),
        )
        return after

    def close_quiet(self, *, now: datetime, limit: int) -> list[Incident]:
        closed: list[Incident] = []
        with self._transaction() as db:
            rows = db.execute("SELECT body FROM incidents WHERE is_open = 1").fetchall()
            for (body,) in rows:
                if len(closed) >= limit:
                    break
                current = changes.from_json(json.loads(body))
                if changes.quiet(current, now):
                    done = changes.close(
                        current, at=current.last_event_at + current.window, reason="quiet"
                    )
                    self._write(db, done, current=True)
                    closed.append(done)
        return closed

    def incidents(
        self, *, open_only: bool = False, workload: str | None = None, limit: int = 100
    ) -> list[Incident]:
        sql = "SELECT body FROM incidents WHERE 1 = 1"
        args: list[object] = []
        if open_only:
            sql += " AND is_open = 1"
        if workload is not None:
            sql += " AND workload_key = ?"
            args.append(_key(workload))
        sql += " ORDER BY opened_at DESC LIMIT ?"
        args.append(limit)
        with self._locked() as db:
            rows = db.execute(sql, args).fetchall()
        return [changes.from_json(json.loads(body)) for (body,) in rows]
