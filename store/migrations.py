"""Ordered schema migrations. Append new ones; never edit one that has shipped."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlite_utils


def _run_script(db: sqlite_utils.Database, script: str) -> None:
    # executescript() would COMMIT first and break the migration's transaction.
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _m001_deployments(db: sqlite_utils.Database) -> None:
    _run_script(
        db,
        """
        CREATE TABLE deployments (
            id TEXT PRIMARY KEY,
            environment TEXT NOT NULL,
            requested_by TEXT NOT NULL,
            version TEXT,
            state TEXT NOT NULL,
            stage TEXT,
            required_approvals INTEGER NOT NULL,
            channel_id TEXT,
            message_ts TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            approval_due_at TEXT,
            started_at TEXT,
            finished_at TEXT,
            error TEXT
        );
        CREATE INDEX deployments_state ON deployments(state);
        CREATE INDEX deployments_env_created ON deployments(environment, created_at);
        CREATE TABLE deployment_targets (
            deployment_id TEXT NOT NULL REFERENCES deployments(id),
            position INTEGER NOT NULL,
            service TEXT NOT NULL,
            current_version TEXT,
            target_version TEXT NOT NULL,
            previous_task_def TEXT,
            new_task_def TEXT,
            status TEXT NOT NULL,
            detail TEXT,
            PRIMARY KEY (deployment_id, service)
        );
        CREATE TABLE approvals (
            deployment_id TEXT NOT NULL REFERENCES deployments(id),
            user_id TEXT NOT NULL,
            decision TEXT NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (deployment_id, user_id)
        );
        CREATE TABLE deployment_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            deployment_id TEXT NOT NULL REFERENCES deployments(id),
            at TEXT NOT NULL,
            stage TEXT NOT NULL,
            service TEXT,
            status TEXT NOT NULL,
            detail TEXT
        );
        CREATE INDEX deployment_events_run ON deployment_events(deployment_id, id);
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            outcome TEXT NOT NULL,
            channel_id TEXT,
            detail TEXT
        );
        """,
    )


Migration = Callable[[sqlite_utils.Database], None]

MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "deployments, approvals, events, audit log", _m001_deployments),
]


def apply_migrations(db: sqlite_utils.Database) -> list[int]:
    """Apply each migration not yet recorded, each in one transaction. Returns those applied."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in db.execute("SELECT version FROM schema_migrations").fetchall()}
    applied = []
    for version, name, migrate in sorted(MIGRATIONS, key=lambda m: m[0]):
        if version in done:
            continue
        with db.atomic():
            migrate(db)
            db.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                [version, name, datetime.now(UTC).isoformat()],
            )
        applied.append(version)
    return applied
