"""The SQLite handle: one sqlite-utils Database living on one dedicated thread.

sqlite-utils connections are thread-bound, so every read and write is a small sync function
submitted to a single-worker executor; that also serialises writes. Public methods are async.
"""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from store.migrations import apply_migrations

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5000


class StoreError(Exception):
    """The database could not be used (locked, corrupt, unreadable)."""


class Store:
    """Owns the database thread. Build with `await Store.open(path)`, end with `close()`."""

    def __init__(self, path: Path | str) -> None:
        self._path = str(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatops-store")
        self._db: sqlite_utils.Database | None = None
        self._closed = False

    @classmethod
    async def open(cls, path: Path | str) -> Store:
        """Open (creating if needed) the database and apply pending migrations."""
        store = cls(path)
        await store._submit(store._open)
        return store

    def _open(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None)
        db = sqlite_utils.Database(conn)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if self._path != ":memory:":
            db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA foreign_keys = ON")
        apply_migrations(db)
        self._db = db

    async def _submit(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        return await loop.run_in_executor(self._executor, ctx.run, fn, *args)

    async def call(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Run `fn(db)` on the store thread. Raises StoreError for SQLite failures."""

        if self._closed:
            raise StoreError("the database is closed")

        def run() -> T:
            if self._db is None:
                raise RuntimeError("The store is closed; open it with Store.open().")
            try:
                return fn(self._db)
            except sqlite3.Error as exc:
                raise StoreError(str(exc)) from exc

        return await self._submit(run)

    async def ping(self) -> bool:
        """True when the database answers a query."""
        try:
            return await self.call(lambda db: db.execute("SELECT 1").fetchone()[0] == 1)
        except (StoreError, RuntimeError):
            return False

    async def close(self) -> None:
        """Close the connection and stop the thread. Closing twice does nothing."""
        if self._closed:
            return
        self._closed = True

        def shut() -> None:
            if self._db is not None:
                self._db.conn.close()
                self._db = None

        await self._submit(shut)
        self._executor.shutdown(wait=True)
