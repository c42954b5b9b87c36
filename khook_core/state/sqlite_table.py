"""One kind of record in a table of the SQLite state file, on a handle of its own.

The config, silence, task, approval and incident stores each keep their table in the same file
as ``SqliteStateStore`` but open their own connection, so none of them waits behind the firing
path's. What they share is here: opening the file and creating the table, one lock per handle,
SQLite errors surfacing as ``TransientError`` (the caller retries later), and write
transactions taken up front (``BEGIN IMMEDIATE``) for read-modify-write across processes.
Commits wait for the disk (SQLite's ``synchronous = FULL``) unless a write asks not to:
``unsynced`` is for what is safe to lose to a power cut (in WAL mode such a commit still
survives the process crashing, and the file stays consistent either way).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from khook_core.errors import TransientError
from khook_core.state.sqlite import connect


class SqliteTable:
    """A connection to the state file for one table; subclasses name it and give its schema."""

    kind: ClassVar[str]
    """What the table holds, for error messages ("silence", "task", …)."""
    schema: ClassVar[tuple[str, ...]]
    """``CREATE … IF NOT EXISTS`` statements, run once per handle."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._db = connect(self.path)
            self._create(self._db)
        except (sqlite3.Error, OSError) as exc:
            raise TransientError(f"cannot open SQLite {self.kind} store {path}: {exc}") from exc

    def _create(self, db: sqlite3.Connection) -> None:
        """Create the table (``schema``) if the file has none yet."""
        for statement in self.schema:
            db.execute(statement)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        """The connection, alone: one statement runs in its own implicit transaction."""
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise TransientError(f"SQLite {self.kind} store {self.path}: {exc}") from exc

    @contextlib.contextmanager
    def _transaction(self, *, synced: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction taken before the first read, committed when the block ends and
        rolled back when it raises; ``synced=False``: its commit is ``unsynced``."""
        with self._locked() as db, contextlib.nullcontext() if synced else unsynced(db):
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()


@contextlib.contextmanager
def unsynced(db: sqlite3.Connection) -> Iterator[None]:
    """The block's commits do not wait for the disk (``synchronous = NORMAL``: in WAL mode a
    commit survives the process crashing, a power cut may roll it back); the connection's own
    level afterwards. Outside a transaction: SQLite refuses the change inside one."""
    (level,) = db.execute("PRAGMA synchronous").fetchone()
    db.execute("PRAGMA synchronous = NORMAL")
    try:
        yield
    finally:
        db.execute(f"PRAGMA synchronous = {int(level)}")
