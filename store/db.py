"""The database handle: one connection living on one dedicated thread.

SQLite (sqlite-utils, the default) or PostgreSQL (`postgresql://…`, psycopg): the backend is
chosen by what `Store.open` is given, and is all that differs (`store.backends`). Connections
are thread-bound, so every read and write is a small sync function `fn(db)` submitted to a
single-worker executor; that also serialises writes. Public methods are async. `write`
group-commits: the writes queued while the thread was busy share one transaction.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

from store.backends.sqlite import SqliteBackend
from store.backends.urls import is_postgres_url
from store.database import Database

T = TypeVar("T")

log = logging.getLogger(__name__)

Write = tuple[Callable[[Database], Any], "asyncio.Future[Any] | None", contextvars.Context]


class Backend(Protocol):
    """One engine: opens, migrates and closes its connection on the store thread."""

    errors: tuple[type[Exception], ...]
    """What the engine raises when the database fails; each becomes a StoreError."""

    def describe(self) -> str:
        """Where the database is, safe to show (a URL's password redacted)."""
        ...

    def open(self) -> None: ...

    def database(self) -> Database | None: ...

    def message(self, exc: Exception) -> str:
        """An engine error's text, safe to show."""
        ...

    def close(self) -> None: ...


class StoreError(Exception):
    """The database could not be used (locked, corrupt, unreadable)."""


class Store:
    """Owns the database thread. Build with `await Store.open(path_or_url)`, end with
    `close()`."""

    def __init__(self, target: Path | str) -> None:
        self._postgres = isinstance(target, str) and is_postgres_url(target)
        self._backend: Backend
        if self._postgres:
            from store.backends.postgres import PostgresBackend  # psycopg: only when used

            self._backend = PostgresBackend(str(target))
        else:
            self._backend = SqliteBackend(target)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatops-store")
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        # Writes waiting for the store thread; a flush job is queued whenever this is not empty.
        self._pending: list[Write] = []
        self._pending_lock = threading.Lock()
        self._flush_queued = False

    @classmethod
    async def open(cls, target: Path | str) -> Store:
        """Open (creating a SQLite file if needed) the database and apply pending migrations.
        `target`: a SQLite file, or a `postgresql://` URL. Raises StoreError when it cannot."""
        store = cls(target)
        try:
            await store._submit(store._backend.open)
        except store._backend.errors as exc:
            store._executor.shutdown(wait=False)
            raise StoreError(f"{store.describe()}: {store._backend.message(exc)}") from _safe_cause(
                store._backend, exc
            )
        return store

    @property
    def is_postgres(self) -> bool:
        return self._postgres

    def describe(self) -> str:
        """The database file or URL, with any password redacted."""
        return self._backend.describe()

    def _error(self, exc: Exception) -> StoreError:
        return StoreError(self._backend.message(exc))

    async def _submit(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        return await loop.run_in_executor(self._executor, ctx.run, fn, *args)

    async def call(self, fn: Callable[[Database], T]) -> T:
        """Run `fn(db)` on the store thread. Raises StoreError for database failures."""

        if self._closed:
            raise StoreError("the database is closed")

        def run() -> T:
            try:
                db = self._backend.database()
                if db is None:
                    raise RuntimeError("The store is closed; open it with Store.open().")
                return fn(db)
            except self._backend.errors as exc:
                raise self._error(exc) from _safe_cause(self._backend, exc)

        return await self._submit(run)

    async def write(self, fn: Callable[[Database], T]) -> T:
        """Run `fn(db)` on the store thread inside a transaction shared with the other writes
        queued meanwhile (group commit); returns once that transaction is committed. `fn`
        runs in a savepoint, so its failure (StoreError) undoes only its own changes."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue(fn, future)
        return await future

    def write_soon(self, fn: Callable[[Database], object]) -> None:
        """Queue `fn(db)` like `write` without waiting for it; a failure is logged. It still runs
        before any store call made after this one, so whatever a later call writes is never
        kept without it."""
        self._queue(fn, None)

    def _queue(self, fn: Callable[[Database], Any], future: asyncio.Future[Any] | None) -> None:
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
        errors: tuple[type[Exception], ...] = (*self._backend.errors, RuntimeError)
        try:
            db = self._backend.database()
            if db is None:
                raise RuntimeError("The store is closed; open it with Store.open().")
            with db.atomic():
                for fn, future, ctx in batch:
                    results.append((future, *self._one_write(db, fn, ctx)))
        except errors as exc:
            failed = self._error(exc) if isinstance(exc, self._backend.errors) else exc
            results = [(future, None, failed) for _, future, _ in batch]
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(_settle, results)

    def _one_write(
        self, db: Database, fn: Callable[[Database], Any], ctx: contextvars.Context
    ) -> tuple[Any, BaseException | None]:
        try:
            with db.atomic():
                return ctx.run(fn, db), None
        except self._backend.errors as exc:
            return None, self._error(exc)
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

        await self._submit(self._backend.close)
        self._executor.shutdown(wait=True)


class Repository:
    """What every repository starts from: the store whose thread runs its reads and writes."""

    def __init__(self, store: Store) -> None:
        self._store = store


def _safe_cause(backend: Backend, exc: Exception) -> Exception | None:
    """The engine's error as the cause of a StoreError, unless its text would show a secret."""
    return exc if backend.message(exc) == str(exc).strip() else None


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
