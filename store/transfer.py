"""`chatops-bot migrate-db --to postgresql://…`: the SQLite database's rows, copied into an
empty PostgreSQL database in one transaction, row counts checked per table.

The target is migrated first (the same numbered migrations), so both have the same tables and
columns; it must hold no row yet (a second run, or a database already in use, is refused and
the tables holding rows are named). SQLite's implicit `rowid` is copied into PostgreSQL's
`rowid` column (store/backends/postgres.py), and every identity sequence is moved past the
copied ids, so the next row gets the next id.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import psycopg

from store.backends.postgres import PgDatabase, connect, migrate
from store.backends.urls import redact, scrub
from store.migrations import MIGRATIONS

BATCH_ROWS = 1000


class TransferError(Exception):
    """The copy was refused or failed; nothing was written. The message says why."""


@dataclass(frozen=True)
class Copied:
    """What was copied: the target (redacted), and each table's row count, checked equal."""

    target: str
    schema_version: int
    counts: dict[str, int]


async def copy_to_postgres(source: Path, url: str) -> Copied:
    """Copy every table of the SQLite database at `source` into the PostgreSQL database at
    `url`. Raises TransferError. Runs on a worker thread."""
    return await asyncio.to_thread(_copy, source, url)


def _copy(source: Path, url: str) -> Copied:
    shown = redact(url)
    if not source.is_file():
        raise TransferError(f"There is no database at {source}. Set CHATOPS_DB to the bot's file.")
    latest = max(version for version, _, _ in MIGRATIONS)
    try:
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise TransferError(f"SQLite could not open {source}: {exc}.") from exc
    try:
        version = _sqlite_version(src)
        if version != latest:
            raise TransferError(
                f"{source} is at schema version {version}; this code has {latest}. Start this "
                "version of the bot on it once (it migrates it), stop it, then copy."
            )
        with connect(url) as conn:
            db = PgDatabase(conn)
            migrate(db)
            tables = _tables(src)
            with db.atomic():
                _refuse_rows(db, tables, shown)
                counts = {table: _copy_table(src, db, table) for table in tables}
                _continue_sequences(db)
                _check_counts(db, counts)
    except psycopg.Error as exc:
        raise TransferError(
            f"PostgreSQL at {shown}: {scrub(str(exc).strip(), url)}. Nothing was copied."
        ) from None
    except sqlite3.Error as exc:
        raise TransferError(f"SQLite could not read {source}: {exc}. Nothing was copied.") from exc
    finally:
        src.close()
    return Copied(target=shown, schema_version=version, counts=counts)


def _sqlite_version(src: sqlite3.Connection) -> int:
    try:
        row = src.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
    except sqlite3.OperationalError:
        return 0
    return int(row[0])


def _tables(src: sqlite3.Connection) -> list[str]:
    """The bot's tables, schema_migrations excepted (the target's own migrations wrote it),
    in the order they were created (a table's references are created before it)."""
    rows = src.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "AND name != 'schema_migrations' ORDER BY rowid"
    ).fetchall()
    return [str(r[0]) for r in rows]


def _refuse_rows(db: PgDatabase, tables: list[str], shown: str) -> None:
    holding = [
        t
        for t in tables
        if db.conn.execute(f"SELECT EXISTS (SELECT 1 FROM {t})").fetchone() != (False,)  # noqa: S608
    ]
    if holding:
        raise TransferError(
            f"{shown} is not empty: rows are already in {', '.join(holding)}. migrate-db "
            "copies into an empty database only, so a database a bot may use is never "
            "overwritten; create a new database and give its URL."
        )


def _columns(db: PgDatabase, table: str) -> set[str]:
    rows = db.conn.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = %s",
        [table],
    ).fetchall()
    return {str(r[0]) for r in rows}


def _copy_table(src: sqlite3.Connection, db: PgDatabase, table: str) -> int:
    cur = src.execute(f"SELECT * FROM {table} LIMIT 0")  # noqa: S608 - names from sqlite_master
    names = [c[0] for c in cur.description]
    target = _columns(db, table)
    missing = [n for n in names if n not in target]
    if missing:
        raise TransferError(
            f"The PostgreSQL table {table} has no column {', '.join(missing)}: its schema is "
            "not this bot version's. Nothing was copied."
        )
    with_rowid = "rowid" in target and "rowid" not in names
    select = ["rowid", *names] if with_rowid else names
    columns = ", ".join(f'"{n}"' for n in select)
    marks = ", ".join("%s" for _ in select)
    insert = f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608 - checked names
    rows = src.execute(f"SELECT {', '.join(select)} FROM {table} ORDER BY rowid")  # noqa: S608
    copied = 0
    with db.conn.cursor() as out:
        while batch := rows.fetchmany(BATCH_ROWS):
            out.executemany(insert, batch)
            copied += len(batch)
    return copied


def _continue_sequences(db: PgDatabase) -> None:
    """Each identity column's next value follows the largest id copied."""
    identities = db.conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND is_identity = 'YES'"
    ).fetchall()
    for table, column in identities:
        db.conn.execute(
            f"SELECT setval(pg_get_serial_sequence(%s, %s), "  # noqa: S608 - catalog names
            f'COALESCE((SELECT MAX("{column}") FROM {table}), 0) + 1, false)',
            [table, column],
        )


def _check_counts(db: PgDatabase, counts: dict[str, int]) -> None:
    for table, expected in counts.items():
        row = db.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()  # noqa: S608
        found = int(row[0]) if row else -1
        if found != expected:
            raise TransferError(
                f"{table}: {expected} rows read from SQLite but {found} in PostgreSQL; the "
                "copy was undone."
            )
