"""What only the PostgreSQL backend has to get right: its errors are StoreErrors without the
URL's password, a connection the server dropped is replaced, replicas starting together migrate
once, and ids and rowids keep SQLite's meaning. (The repositories' behaviour on both backends is
every other test in this folder.)"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from store.audit import AuditEntry, AuditLog
from store.backends.postgres import to_postgres
from store.backends.urls import redact
from store.database import Database
from store.db import Store, StoreError
from store.deploy.repository import Deployments
from store.migrations import MIGRATIONS
from store.requests import OpenRequests
from tests.fakes.postgres import PASSWORD
from tests.store.test_deployments import T0, make_run


def _other_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def test_a_database_that_cannot_be_opened_is_a_store_error_without_the_password(
    pg_url: str,
) -> None:
    missing = _other_database(pg_url, "no_such_database")

    with pytest.raises(StoreError) as raised:
        await Store.open(missing)

    message = str(raised.value)
    assert 'database "no_such_database" does not exist' in message
    assert "postgresql://chatops:***@127.0.0.1" in message
    assert PASSWORD not in message
    assert raised.value.__cause__ is None or PASSWORD not in str(raised.value.__cause__)


async def test_the_store_describes_its_database_with_the_password_redacted(pg_url: str) -> None:
    store = await Store.open(pg_url)
    try:
        assert store.is_postgres
        assert store.describe() == redact(pg_url)
        assert PASSWORD not in store.describe()
        assert PASSWORD in pg_url
    finally:
        await store.close()


async def test_a_failing_statement_is_a_store_error_and_the_next_call_works(
    database: Path | str,
) -> None:
    store = await Store.open(database)
    try:
        with pytest.raises(StoreError, match="no_such_table"):
            await store.call(lambda db: db.execute("SELECT * FROM no_such_table").fetchall())

        def fails(db: Database) -> None:
            _audit(db, "UKEPT")
            db.execute("INSERT INTO no_such_table VALUES (1)")

        # Two writes of one group commit: the failing one is undone alone.
        kept, failed = await asyncio.gather(
            store.write(lambda db: _audit(db, "UKEPT")),
            store.write(fails),
            return_exceptions=True,
        )
        assert kept is None
        assert isinstance(failed, StoreError)
        actors = await store.call(
            lambda db: [r[0] for r in db.execute("SELECT actor FROM audit_log").fetchall()]
        )
        assert actors == ["UKEPT"]
        assert await store.ping()
    finally:
        await store.close()


def _audit(db: Database, actor: str) -> None:
    AuditLog.insert(db, AuditEntry(at=T0, actor=actor, action="/deploy", outcome="ok"))


async def test_a_connection_the_server_dropped_is_replaced(pg_url: str) -> None:
    store = await Store.open(pg_url)
    try:
        pid = await store.call(lambda db: db.execute("SELECT pg_backend_pid()").fetchone()[0])
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])

        with pytest.raises(StoreError):
            await store.call(lambda db: db.execute("SELECT 1").fetchone())
        assert await store.ping()
        again = await store.call(lambda db: db.execute("SELECT pg_backend_pid()").fetchone()[0])
        assert again != pid
    finally:
        await store.close()


async def test_replicas_opening_an_empty_database_together_migrate_it_once(
    pg_empty_url: str,
) -> None:
    stores = await asyncio.gather(*(Store.open(pg_empty_url) for _ in range(3)))
    try:
        versions = await stores[0].call(
            lambda db: [
                r[0] for r in db.execute("SELECT version FROM schema_migrations").fetchall()
            ]
        )
        assert sorted(versions) == [v for v, _, _ in MIGRATIONS]
    finally:
        for store in stores:
            await store.close()


async def test_journal_ids_are_given_in_order_by_the_database(database: Path | str) -> None:
    store = await Store.open(database)
    try:
        journal = OpenRequests(store)
        ids = [
            await journal.open(at=T0, actor=f"U{i}", action="/deploy", channel_id=None, ref=None)
            for i in range(3)
        ]
        assert ids == sorted(ids)
        assert len(set(ids)) == 3
        assert [r.id for r in await journal.left_open()] == ids
    finally:
        await store.close()


def test_the_dialect_translates_only_outside_quotes() -> None:
    assert (
        to_postgres("SELECT ':x ?' FROM t WHERE a = ? AND b LIKE 'ab%' AND c = :name")
        == "SELECT ':x ?' FROM t WHERE a = %s AND b LIKE 'ab%%' AND c = %(name)s"
    )
    assert to_postgres("DELETE FROM t WHERE julianday(at) < julianday(?)") == (
        "DELETE FROM t WHERE CAST(at AS timestamptz) < CAST(%s AS timestamptz)"
    )
    assert to_postgres("SELECT id FROM t WHERE a IN () OR b NOT IN ()") == (
        "SELECT id FROM t WHERE a IN (SELECT NULL WHERE FALSE) "
        "OR b NOT IN (SELECT NULL WHERE FALSE)"
    )
    assert "rowid BIGINT GENERATED BY DEFAULT AS IDENTITY" in to_postgres(
        "CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER, x REAL)"
    )
    assert "rowid" not in to_postgres(
        "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, n TEXT)"
    )
    assert to_postgres("ALTER TABLE t ADD COLUMN text TEXT") == (
        'ALTER TABLE t ADD COLUMN text TEXT COLLATE "C"'
    )


async def test_asking_for_no_states_or_no_services_finds_nothing(database: Path | str) -> None:
    store = await Store.open(database)
    try:
        runs = Deployments(store)
        await runs.create(make_run("run-1"))

        assert await runs.in_states([]) == []
        assert await runs.mark_reverted("run-1", services=[], by="rb-1", at=T0) is not None
    finally:
        await store.close()


async def test_a_transaction_left_idle_by_a_cut_off_replica_is_ended_by_the_server(
    pg_url: str,
) -> None:
    # A replica partitioned mid-transaction would otherwise hold the write lock, and with it
    # every replica's writes, until the server noticed the dead connection.
    store = await Store.open(pg_url)
    try:
        setting = await store.call(
            lambda db: db.execute("SHOW idle_in_transaction_session_timeout").fetchone()[0]
        )
    finally:
        await store.close()
    assert setting == "10s"
