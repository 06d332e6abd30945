"""The SQLite backend (the default): one file through sqlite-utils, in WAL mode.

Everything SQLite-specific about opening and closing the database is here; the repositories'
SQL is SQLite's own dialect, so nothing is translated.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import sqlite_utils

from store.database import Database
from store.migrations import apply_migrations

BUSY_TIMEOUT_MS = 5000


class _Database(sqlite_utils.Database):
    """A sqlite-utils Database whose transactions take the write lock when they begin
    (`BEGIN IMMEDIATE`). Several processes (replicas) share one file in WAL mode: a deferred
    transaction that read before writing would fail at once (SQLITE_BUSY_SNAPSHOT) when
    another connection wrote meanwhile, where an immediate one waits its turn (busy_timeout)."""

    @contextlib.contextmanager
    def atomic(self) -> Iterator[sqlite_utils.Database]:
        if self.conn.in_transaction:
            with super().atomic():
                yield self
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
            self.conn.execute("COMMIT")
        except BaseException:
            _roll_back(self.conn)
            raise


def _roll_back(conn: sqlite3.Connection) -> None:
    """Undo the open transaction; nothing when an error already ended it."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


class SqliteBackend:
    """The database file at `path` (`:memory:` for a private in-memory one)."""

    errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(self, path: Path | str) -> None:
        self._path = str(path)
        self._db: sqlite_utils.Database | None = None

    def describe(self) -> str:
        return self._path

    def open(self) -> None:
        """Open (creating if needed) and migrate. On the store thread."""
        conn = sqlite3.connect(self._path, isolation_level=None)
        db = _Database(conn)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if self._path != ":memory:":
            db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA foreign_keys = ON")
        apply_migrations(db)
        self._db = db

    def database(self) -> Database | None:
        """The open database (None once closed). On the store thread."""
        return self._db

    def message(self, exc: Exception) -> str:
        return str(exc)

    def close(self) -> None:
        if self._db is not None:
            self._db.conn.close()
            self._db = None
