"""The SQLite backend (the default): one file through sqlite-utils, in WAL mode.

Everything SQLite-specific about opening and closing the database is here; the repositories'
SQL is SQLite's own dialect, so nothing is translated.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils

from store.database import Database
from store.migrations import apply_migrations

BUSY_TIMEOUT_MS = 5000


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
        db = sqlite_utils.Database(conn)
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
