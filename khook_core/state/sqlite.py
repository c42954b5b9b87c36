"""SQLite state store: the embedded default, one file, safe across processes.

The claim is one ``INSERT … ON CONFLICT DO UPDATE … WHERE expired`` statement, which SQLite
executes atomically under its write lock; ``changes()`` tells whether this caller won. WAL mode
lets readers (``khook firings``) run beside writers.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from khook_core.errors import TransientError
from khook_core.state import audit_fields, base
from khook_core.state.base import DedupKey
from khook_core.storm.records import Backlog, BacklogKey, BacklogKind

SCHEMA_VERSION = 4
"""Version 2: leases have ids, backlogs keep their hook and latest event. Version 3: claims
have an owner (the delivery that took them) and an ``unsure`` flag. Version 4: backlogs keep
their key's kind and name beside the key (filled in for the rows of a version 3 file)."""
PURGE_EVERY = 1_000
"""Claims made between two deletions of expired claims (the file would otherwise keep every
dedup key it ever saw)."""
BUSY_TIMEOUT_MS = 10_000
"""How long a writer waits for another process's lock before giving up (then: retry later)."""

_FIRINGS_TABLE = (
    "CREATE TABLE IF NOT EXISTS firings (\n    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    at REAL NOT NULL,\n"
    # DEFAULT '': a row written by an older version (fewer fields) reads the new ones as empty.
    + "".join(f"    {name} TEXT NOT NULL DEFAULT '',\n" for name in audit_fields.TEXT_FIELDS)
    + "    extra TEXT NOT NULL\n);"
)
"""The audit trail, one column per field of ``Firing`` (``audit_fields``)."""

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    claimed_at REAL NOT NULL,
    expire_at REAL NOT NULL,
    outcome TEXT NOT NULL DEFAULT 'claimed',
    task_id TEXT NOT NULL DEFAULT '',
    owner TEXT NOT NULL DEFAULT '',
    unsure INTEGER NOT NULL DEFAULT 0
);
{_FIRINGS_TABLE}
CREATE INDEX IF NOT EXISTS claims_expire_at ON claims (expire_at);
CREATE INDEX IF NOT EXISTS firings_hook_at ON firings (hook, at);
CREATE INDEX IF NOT EXISTS firings_at ON firings (at);
CREATE TABLE IF NOT EXISTS slots (
    key TEXT PRIMARY KEY,
    window_start REAL NOT NULL,
    used INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    scope TEXT NOT NULL,
    expire_at REAL NOT NULL,
    lease TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS leases_scope ON leases (scope, expire_at);
CREATE TABLE IF NOT EXISTS backlog (
    key TEXT PRIMARY KEY,
    summary TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT '',
    name TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS circuits (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    open_until REAL
);
"""

# Column names come from the Firing dataclass, never from input; values are bound.
_INSERT_FIRING = (
    f"INSERT INTO firings ({', '.join(audit_fields.COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('?' * len(audit_fields.COLUMNS))})"
)
_INSERT_NEW_CLAIM = (
    "INSERT INTO claims (key, claimed_at, expire_at, outcome, task_id, owner, unsure) "
    "VALUES (?, ?, ?, ?, '', ?, 0) ON CONFLICT(key) DO NOTHING"
)
"""A claim of a key with no row; ``changes()`` is 0 if one was written since it was read."""
_SELECT_CLAIM = "SELECT owner, outcome, claimed_at, expire_at, unsure FROM claims WHERE key = ?"
_SELECT_FIRINGS = f"SELECT {', '.join(audit_fields.COLUMNS)} FROM firings WHERE 1=1"  # noqa: S608

_COUNTS_INDEX = (
    "CREATE INDEX IF NOT EXISTS firings_counts ON firings (at, hook, source, event_type, outcome)"
)
"""``count_firings`` reads the range and the four counted fields from this index alone, never
the table's rows (created after the columns an older file gains)."""
_COUNT_FIRINGS = (
    # Epoch seconds are positive, so truncating the quotient floors it (SQLite's % is integer).
    "SELECT CAST(at / ? AS INTEGER) * ?, hook, source, event_type, outcome, COUNT(*) "
    "FROM firings WHERE 1=1"
)
_GROUP_COUNTS = " GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5"

_CLAIM_COLUMNS_V3 = ("owner TEXT NOT NULL DEFAULT ''", "unsure INTEGER NOT NULL DEFAULT 0")
_BACKLOG_COLUMNS_V4 = ("kind TEXT NOT NULL DEFAULT ''", "name TEXT NOT NULL DEFAULT ''")


def _filtered(sql: str, where: base.FiringFilter) -> tuple[str, list[object]]:
    """``sql`` (ending in a WHERE clause) narrowed to ``where``; column names come from the
    ``FiringFilter`` fields, never from input, and values are bound."""
    params: list[object] = []
    for name, value in where.equalities().items():
        sql += f" AND {name} = ?"
        params.append(value)
    if where.since is not None:
        sql += " AND at >= ?"
        params.append(where.since.timestamp())
    if where.until is not None:
        sql += " AND at < ?"
        params.append(where.until.timestamp())
    return sql, params


def _storable(value: object) -> object:
    """A string SQLite can store: sqlite3 refuses text with lone surrogates (it cannot encode
    them as UTF-8), so those are written as ``\\udXXX`` escapes; everything else unchanged."""
    if type(value) is not str or value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


class _TextSafeConnection(sqlite3.Connection):
    """Binds parameters through ``_storable``, so no key or text can fail a statement."""

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return super().execute(sql, tuple(map(_storable, parameters)))


def connect(
    path: Path, *, factory: type[sqlite3.Connection] = sqlite3.Connection
) -> sqlite3.Connection:
    """A connection to the state file shared by every store of one process (the state store,
    the configuration store): autocommit, usable from any thread, WAL, waiting up to
    ``BUSY_TIMEOUT_MS`` for another process's lock."""
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(
        str(path),
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
        check_same_thread=False,
        factory=factory,
    )
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    db.execute("PRAGMA journal_mode = WAL")
    return db


def _add_backlog_kinds(db: sqlite3.Connection) -> None:
    """Version 3 to 4: the backlog table gains its key's kind and name, read once from the
    keys of the rows it already holds (``BacklogKey.from_stored``)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(backlog)")}
    for column in _BACKLOG_COLUMNS_V4:
        if column.split()[0] not in columns:
            db.execute(f"ALTER TABLE backlog ADD COLUMN {column}")
    for (stored,) in db.execute("SELECT key FROM backlog WHERE kind = ''").fetchall():
        key = BacklogKey.from_stored(stored)
        db.execute(
            "UPDATE backlog SET kind = ?, name = ? WHERE key = ?",
            (key.kind.value, key.name, stored),
        )


class SqliteStateStore:
    """Claims and firings in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()  # one connection, shared by the threads of a process
        self._claims_since_purge = 0
        try:
            self._db = connect(self.path, factory=_TextSafeConnection)
            self._db.execute("PRAGMA synchronous = NORMAL")
            # The duplicate's claim read reuses one cursor (under the lock) rather than
            # building and freeing one per call, as ``Connection.execute`` does.
            self._claim_reader = self._db.cursor()
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise TransientError(f"cannot open SQLite state store {path}: {exc}") from exc

    def _migrate(self) -> None:
        """Create the tables; a file from an older version first loses its storm-control
        tables whose layout changed (short-lived state: leases and held-back summaries), and
        its audit trail gains a column for each field ``Firing`` has gained."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")  # processes opening one file at once migrate once
        try:
            (version,) = db.execute("PRAGMA user_version").fetchone()
            if version < 3:  # their layout changed in version 2; a version 3 file keeps them
                db.execute("DROP TABLE IF EXISTS leases")
                db.execute("DROP TABLE IF EXISTS backlog")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            columns = {row[1] for row in db.execute("PRAGMA table_info(claims)")}
            for column in _CLAIM_COLUMNS_V3:
                if column.split()[0] not in columns:  # a version 2 file keeps its claims
                    db.execute(f"ALTER TABLE claims ADD COLUMN {column}")
            recorded = {row[1] for row in db.execute("PRAGMA table_info(firings)")}
            for name in audit_fields.TEXT_FIELDS:
                if name not in recorded:  # a field added to Firing: older records read ''
                    db.execute(f"ALTER TABLE firings ADD COLUMN {name} TEXT NOT NULL DEFAULT ''")
            db.execute(_COUNTS_INDEX)
            if version < SCHEMA_VERSION:
                _add_backlog_kinds(db)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _run(self, sql: str, params: tuple[object, ...]) -> sqlite3.Cursor:
        try:
            with self._lock:
                return self._db.execute(sql, params)
        except sqlite3.Error as exc:
            raise TransientError(f"SQLite state store {self.path}: {exc}") from exc

    def _read_claim(self, key: DedupKey) -> tuple[Any, ...] | None:
        """The committed row of ``key`` (``_SELECT_CLAIM``), read in its own implicit
        transaction; fetching its only row ends the statement, so no read snapshot stays open."""
        try:
            with self._lock:
                row: tuple[Any, ...] | None = self._claim_reader.execute(
                    _SELECT_CLAIM, (_storable(key),)
                ).fetchone()
                return row
        except sqlite3.Error as exc:
            raise TransientError(f"SQLite state store {self.path}: {exc}") from exc

    def claim(self, *, key: DedupKey, ttl: timedelta, now: datetime) -> bool:
        ts = now.timestamp()
        cursor = self._run(
            "INSERT INTO claims (key, claimed_at, expire_at) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET claimed_at = excluded.claimed_at, "
            "expire_at = excluded.expire_at, outcome = 'claimed', task_id = '', owner = '', "
            "unsure = 0 WHERE claims.expire_at <= excluded.claimed_at",
            (key, ts, ts + ttl.total_seconds()),
        )
        self._purge_now_and_then(ts)
        return cursor.rowcount == 1

    def _purge_now_and_then(self, ts: float) -> None:
        self._claims_since_purge += 1
        if self._claims_since_purge >= PURGE_EVERY:
            self._claims_since_purge = 0
            self._run("DELETE FROM claims WHERE expire_at <= ?", (ts,))

    def claim_firing(
        self, *, key: DedupKey, owner: str, ttl: timedelta, now: datetime, stale_after: timedelta
    ) -> base.ClaimResult:
        ts = now.timestamp()
        # A live claim this call leaves as it is (another owner's, ours confirmed, ours still
        # running: a storm's duplicates) is answered from one read of the committed row, as a
        # read-only transaction would answer it, without taking the file's write lock.
        row = self._read_claim(key)
        if row is not None and row[3] > ts:
            if row[0] != owner:  # the storm's common case: someone else's claim (resume_result)
                return "held"
            held = base.HeldClaim(row[0], row[1], datetime.fromtimestamp(row[2], UTC), bool(row[4]))
            unchanged = base.resume_result(held, owner, now, stale_after)
            if unchanged in ("held", "busy"):
                return unchanged
        elif row is None:
            # No row: a firing's usual claim is one atomic insert (no transaction to begin and
            # commit around a second read); a row written since the read falls through.
            fields = (key, ts, ts + ttl.total_seconds(), base.CLAIMED, owner)
            if self._run(_INSERT_NEW_CLAIM, fields).rowcount == 1:
                self._purge_now_and_then(ts)
                return "won"
        # One write transaction: a write either commits or raises, so SQLite never leaves an
        # outcome unknown; the owner still lets a redelivery resume a claim whose later steps
        # (storm control, release) failed while the file was locked. It reads the row again:
        # it may have changed since.
        with self._transaction() as db:
            row = db.execute(_SELECT_CLAIM, (key,)).fetchone()
            if row is None or row[3] <= ts:
                db.execute(
                    "INSERT OR REPLACE INTO claims (key, claimed_at, expire_at, outcome, task_id, "
                    "owner, unsure) VALUES (?, ?, ?, ?, '', ?, 0)",
                    (key, ts, ts + ttl.total_seconds(), base.CLAIMED, owner),
                )
                result: base.ClaimResult = "won"
            else:
                held = base.HeldClaim(
                    row[0], row[1], datetime.fromtimestamp(row[2], UTC), bool(row[4])
                )
                result = base.resume_result(held, owner, now, stale_after)
                if result in ("resumed", "uncertain"):
                    db.execute(
                        "UPDATE claims SET claimed_at = ?, outcome = ? WHERE key = ?",
                        (ts, base.CLAIMED, key),
                    )
        if result == "won":
            self._purge_now_and_then(ts)
        return result

    def mark_uncertain(self, *, key: DedupKey) -> None:
        self._run("UPDATE claims SET outcome = ?, unsure = 1 WHERE key = ?", (base.UNCERTAIN, key))

    def release(self, *, key: DedupKey) -> None:
        self._run("DELETE FROM claims WHERE key = ?", (key,))

    def confirm(self, *, key: DedupKey, outcome: str, task_id: str = "") -> None:
        self._run(
            "UPDATE claims SET outcome = ?, task_id = ? WHERE key = ?", (outcome, task_id, key)
        )

    def record(self, firing: base.Firing) -> None:
        self._run(_INSERT_FIRING, audit_fields.to_row(firing))

    def firings(
        self, *, hook: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[base.Firing]:
        sql = _SELECT_FIRINGS
        params: list[object] = []
        if hook is not None:
            sql += " AND hook = ?"
            params.append(hook)
        if since is not None:
            sql += " AND at >= ?"
            params.append(since.timestamp())
        sql += " ORDER BY at DESC, id DESC LIMIT ?"
        params.append(limit)
        rows = self._run(sql, tuple(params)).fetchall()
        return [audit_fields.from_row(row) for row in rows]

    def query_firings(
        self, *, where: base.FiringFilter, cursor: str | None = None, limit: int = 100
    ) -> base.FiringPage:
        if limit <= 0:
            return base.FiringPage([], None)
        sql, params = _filtered("SELECT id, " + _SELECT_FIRINGS.removeprefix("SELECT "), where)
        if cursor is not None:
            at, row_id = base.decode_cursor(cursor, (float, int))
            sql += " AND (at < ? OR (at = ? AND id < ?))"
            params += [at, at, row_id]
        sql += " ORDER BY at DESC, id DESC LIMIT ?"
        params.append(limit + 1)  # one more: is there a next page?
        rows = self._run(sql, tuple(params)).fetchall()
        page = rows[:limit]
        next_cursor = base.encode_cursor(page[-1][1], page[-1][0]) if len(rows) > limit else None
        return base.FiringPage([audit_fields.from_row(row[1:]) for row in page], next_cursor)

    def count_firings(
        self, *, where: base.FiringFilter, bucket: timedelta
    ) -> list[base.FiringCount]:
        size = bucket.total_seconds()
        sql, params = _filtered(_COUNT_FIRINGS, where)
        rows = self._run(sql + _GROUP_COUNTS, (size, size, *params)).fetchall()
        return [
            base.FiringCount(datetime.fromtimestamp(start, UTC), hook, source, kind, outcome, n)
            for start, hook, source, kind, outcome, n in rows
        ]

    def backlogs(self, *, limit: int) -> list[tuple[BacklogKey, Backlog]]:
        rows = self._run(
            "SELECT kind, name, summary FROM backlog ORDER BY key LIMIT ?", (max(limit, 0),)
        ).fetchall()
        return [
            (BacklogKey(BacklogKind(kind), name), Backlog.from_json(json.loads(summary)))
            for kind, name, summary in rows
        ]

    def circuits(self, *, now: datetime, limit: int) -> list[base.CircuitRecord]:
        rows = self._run(
            "SELECT key, failures, open_until FROM circuits ORDER BY key LIMIT ?",
            (max(limit, 0),),
        ).fetchall()
        records = []
        for key, failures, open_until in rows:
            until = None if open_until is None else datetime.fromtimestamp(open_until, UTC)
            records.append(
                base.CircuitRecord(key, failures, base.circuit_state_of(until, now), until)
            )
        return records

    def take_slot(self, *, key: str, limit: int, window: timedelta, now: datetime) -> bool:
        if limit <= 0:
            return False
        start = base.window_start(now, window)
        # One statement: a newer window resets the count, the same window counts up while
        # under the limit, an older window (a clock behind) changes nothing and is refused.
        cursor = self._run(
            "INSERT INTO slots (key, window_start, used) VALUES (?, ?, 1) "
            "ON CONFLICT(key) DO UPDATE SET "
            "used = CASE WHEN slots.window_start = excluded.window_start THEN slots.used + 1 "
            "ELSE 1 END, window_start = excluded.window_start "
            "WHERE slots.window_start < excluded.window_start "
            "OR (slots.window_start = excluded.window_start AND slots.used < ?)",
            (key, start, limit),
        )
        return cursor.rowcount == 1

    def return_slot(self, *, key: str, window: timedelta, now: datetime) -> None:
        self._run(
            "UPDATE slots SET used = used - 1 WHERE key = ? AND window_start = ? AND used > 0",
            (key, base.window_start(now, window)),
        )

    def acquire_lease(self, *, scope: str, cap: int, ttl: timedelta, now: datetime) -> str | None:
        ts = now.timestamp()
        with self._transaction() as db:
            db.execute("DELETE FROM leases WHERE scope = ? AND expire_at <= ?", (scope, ts))
            (live,) = db.execute("SELECT COUNT(*) FROM leases WHERE scope = ?", (scope,)).fetchone()
            if live >= cap:
                return None
            lease = uuid.uuid4().hex
            db.execute(
                "INSERT INTO leases (scope, expire_at, lease) VALUES (?, ?, ?)",
                (scope, ts + ttl.total_seconds(), lease),
            )
            return lease

    def release_lease(self, *, scope: str, lease: str) -> None:
        self._run("DELETE FROM leases WHERE scope = ? AND lease = ?", (scope, lease))

    def add_backlog(self, *, key: BacklogKey, backlog: Backlog) -> None:
        stored = key.stored
        with self._transaction() as db:
            row = db.execute("SELECT summary FROM backlog WHERE key = ?", (stored,)).fetchone()
            if row is not None:
                backlog = Backlog.from_json(json.loads(row[0])).merge(backlog)
            db.execute(
                "INSERT OR REPLACE INTO backlog (key, summary, kind, name) VALUES (?, ?, ?, ?)",
                (stored, json.dumps(backlog.to_json()), key.kind.value, key.name),
            )

    def take_backlog(self, *, key: BacklogKey) -> Backlog | None:
        stored = key.stored
        # Nothing held back, the usual case: answered from one read, without the write lock.
        if self._run("SELECT 1 FROM backlog WHERE key = ?", (stored,)).fetchone() is None:
            return None
        with self._transaction() as db:  # reads it again: another process may have taken it
            row = db.execute("SELECT summary FROM backlog WHERE key = ?", (stored,)).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM backlog WHERE key = ?", (stored,))
            return Backlog.from_json(json.loads(row[0]))

    def backlog_keys(self, *, limit: int) -> list[BacklogKey]:
        rows = self._run("SELECT kind, name FROM backlog ORDER BY key LIMIT ?", (limit,)).fetchall()
        return [BacklogKey(BacklogKind(kind), name) for kind, name in rows]

    def record_failure(
        self, *, key: str, threshold: int, cool_down: timedelta, now: datetime
    ) -> bool:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO circuits (key, failures) VALUES (?, 1) ON CONFLICT(key) "
                "DO UPDATE SET failures = circuits.failures + 1",
                (key,),
            )
            (failures,) = db.execute(
                "SELECT failures FROM circuits WHERE key = ?", (key,)
            ).fetchone()
            if failures < threshold:
                return False
            db.execute(
                "UPDATE circuits SET open_until = ? WHERE key = ?",
                ((now + cool_down).timestamp(), key),
            )
            return True

    def record_success(self, *, key: str) -> None:
        # A closed circuit has no row, the usual case: nothing to write, no write lock taken.
        if self._run("SELECT 1 FROM circuits WHERE key = ?", (key,)).fetchone() is not None:
            self._run("DELETE FROM circuits WHERE key = ?", (key,))

    def circuit_state(self, *, key: str, now: datetime) -> base.CircuitState:
        row = self._run("SELECT open_until FROM circuits WHERE key = ?", (key,)).fetchone()
        open_until = None if row is None or row[0] is None else datetime.fromtimestamp(row[0], UTC)
        return base.circuit_state_of(open_until, now)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front (BEGIN IMMEDIATE), so read-modify-write is atomic
        across processes; errors roll back and surface as ``TransientError``."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise TransientError(f"SQLite state store {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()
