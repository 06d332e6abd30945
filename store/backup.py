"""A consistent copy of the bot's database while the bot runs (SQLite's online backup API)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

# Pages copied per step; between steps the bot's own writes go on (the copy restarts from the
# changed page, as the backup API does, so it stays a snapshot of one moment).
PAGES_PER_STEP = 256


class BackupError(Exception):
    """The backup could not be made; the message says why and what to do."""


@dataclass(frozen=True)
class Backup:
    """What was copied: the file, its size, the last migration it has, and its row counts."""

    path: Path
    size_bytes: int
    schema_version: int
    audit_rows: int
    deployments: int
    incidents: int


async def back_up(source: Path, target: Path) -> Backup:
    """Copy the database at `source` to `target` (which must not exist) and check the copy.

    Safe while the bot writes to `source`: SQLite's backup API copies one consistent moment,
    including what is still in the write-ahead log. The copy is a single file (no `-wal`).
    Raises BackupError. Runs on a worker thread; a cancelled call still finishes its copy.
    """
    return await asyncio.to_thread(_back_up, source, target)


def _back_up(source: Path, target: Path) -> Backup:
    if not source.is_file():
        raise BackupError(f"There is no database at {source}. Set CHATOPS_DB to the bot's file.")
    if target.exists():
        raise BackupError(f"{target} already exists; choose a new file name.")
    partial = target.with_name(target.name + ".partial")
    try:
        # Read-only: a backup never creates, migrates or changes the bot's database.
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst, pages=PAGES_PER_STEP)
                # One self-contained file, whatever mode the bot's database is in.
                dst.execute("PRAGMA journal_mode = DELETE")
                backup = _describe(dst, target)
            finally:
                dst.close()
        finally:
            src.close()
        os.replace(partial, target)
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"SQLite could not copy {source}: {exc}.") from exc
    return backup


def _describe(db: sqlite3.Connection, target: Path) -> Backup:
    [check] = db.execute("PRAGMA integrity_check").fetchone()
    if check != "ok":
        raise BackupError(f"The copy failed SQLite's integrity check: {check}.")

    def count(table: str) -> int:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608 - fixed names

    version = db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
    size = db.execute(
        "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
    ).fetchone()[0]
    return Backup(
        path=target,
        size_bytes=int(size),
        schema_version=int(version),
        audit_rows=count("audit_log"),
        deployments=count("deployments"),
        incidents=count("incidents"),
    )
