"""The SQLite handle: one sqlite-utils Database living on one dedicated thread.

sqlite-utils connections are thread-bound, so every read and write is a small sync function
submitted to a single-worker executor; that also serialises writes. Public methods are async.
`write` group-commits: the writes queued while the thread was busy share one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from store.migrations import apply_migrations

T = TypeVar("T")

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000

Write = tuple[
    Callable[[sqlite_utils.Database], Any], "asyncio.Future[Any] | None", contextvars.Context
]


class StoreError(Exception):
    """The database could not be used (locked, corrupt, unreadable)."""


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


class Store:
    """Owns the database thread. Build with `await Store.open(path)`, end with `close()`."""

    def __init__(self, path: Path | str) -> None:
        self._path = str(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatops-store")
        self._db: sqlite_utils.Database | None = None
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        # Writes waiting for the store thread; a flush job is queued whenever this is not empty.
        self._pending: list[Write] = []
        self._pending_lock = threading.Lock()
        self._flush_queued = False

    @classmethod
    async def open(cls, path: Path | str) -> Store:
        """Open (creating if needed) the database and apply pending migrations."""
        store = cls(path)
        await store._submit(store._open)
        return store

    def _open(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None)
        db = _Database(conn)
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

    async def write(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Run `fn(db)` on the store thread inside a transaction shared with the other writes
        queued meanwhile (group commit); returns once that transaction is committed. `fn`
        runs in a savepoint, so its failure (StoreError) undoes only its own changes."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue(fn, future)
        return await future

    def write_soon(self, fn: Callable[[sqlite_utils.Database], object]) -> None:
        """Queue `fn(db)` like `write` without waiting for it; a failure is logged. It still runs
        before any store call made after this one, so whatever a later call writes is never
        kept without it."""
        self._queue(fn, None)

    def _queue(
        self, fn: Callable[[sqlite_utils.Database], Any], future: asyncio.Future[Any] | None
    ) -> None:
        if self._closed:
            raise StoreError("the database is closed")
        self._loop = asyncio.get_running_loop()
        with self._pending_lock:
            self._pending.append((fn, future, contextvars.copy_context()))
            queue_flush = not self._flush_queued
            self._flush_queued = True
        if queue_flush:
            self._executor.submit(self._flush)

    def _flush(self) -> None:
        """On the store thread: every queued write, in one transaction."""
        with self._pending_lock:
            batch, self._pending = self._pending, []
            self._flush_queued = False
        results: list[tuple[asyncio.Future[Any] | None, Any, BaseException | None]] = []
        try:
            if self._db is None:
                raise RuntimeError("The store is closed; open it with Store.open().")
            with self._db.atomic():
                for fn, future, ctx in batch:
                    results.append((future, *self._one_write(self._db, fn, ctx)))
        except (sqlite3.Error, RuntimeError) as exc:
            failed = StoreError(str(exc)) if isinstance(exc, sqlite3.Error) else exc
            results = [(future, None, failed) for _, future, _ in batch]
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(_settle, results)

    @staticmethod
    def _one_write(
        db: sqlite_utils.Database,
        fn: Callable[[sqlite_utils.Database], Any],
        ctx: contextvars.Context,
    ) -> tuple[Any, BaseException | None]:
        try:
            with db.atomic():
                return ctx.run(fn, db), None
        except sqlite3.Error as exc:
            return None, StoreError(str(exc))
        except Exception as exc:  # noqa: BLE001 - handed to the caller who queued the write
            return None, exc

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


class Repository:
    """What every repository starts from: the store whose thread runs its reads and writes."""

    def __init__(self, store: Store) -> None:
        self._store = store


def _settle(results: list[tuple[asyncio.Future[Any] | None, Any, BaseException | None]]) -> None:
    """On the loop: hand each write of a committed (or failed) batch its answer."""
    for future, value, error in results:
        if future is None:
            if error is not None:
                log.error("a queued database write failed", exc_info=error)
        elif future.cancelled():
            continue
        elif error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)
