"""One kind of record in a table of the SQLite state file, on a handle of its own.

The config, silence, task, approval and incident stores each keep their table in the same file
as ``SqliteStateStore`` but open their own connection, so none of them waits behind the firing
path's. What they share is here: opening the file and creating the table, one lock per handle,
SQLite errors surfacing as ``TransientError`` (the caller retries later), and write
transactions taken up front (``BEGIN IMMEDIATE``) for read-modify-write across processes.
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
            for statement in self.schema:
                self._db.execute(statement)
        except (sqlite3.Error, OSError) as exc:
            raise TransientError(f"cannot open SQLite {self.kind} store {path}: {exc}") from exc

    @contextlib.contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        """The connection, alone: one statement runs in its own implicit transaction."""
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise TransientError(f"SQLite {self.kind} store {self.path}: {exc}") from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken before the first read, committed when the block ends and
        rolled back when it raises."""
        with self._locked() as db:
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
