"""`chatops-bot doctor`: what the config needs against what the credentials give, one finding
per check. It reads; the only thing it writes is nothing (a rolled-back write-lock on the DB)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from slack_sdk.web.async_client import AsyncWebClient

from bot.doctor.aws import AwsReaders, aws_findings
from bot.doctor.report import Finding, as_json, as_text, fail, failed, not_checked, ok
from bot.doctor.slack import BOT_SCOPES, slack_findings
from pipeline.kernel.config import Config, ConfigError, load_config
from store.backends.urls import is_postgres_url, redact
from store.migrations import MIGRATIONS

__all__ = ["AwsReaders", "Finding", "as_json", "as_text", "database_finding", "diagnose", "failed"]

DB_TIMEOUT_S = 5.0


def config_findings(path: Path) -> tuple[list[Finding], Config | None]:
    try:
        config = load_config(path)
    except ConfigError as exc:
        return [
            fail("config", f"{path}: {problem}", "correct the file (`chatops-bot check-config`).")
            for problem in exc.problems
        ], None
    return [ok("config", f"{path} is valid.")], config


def database_finding(target: Path | str) -> Finding:
    """Writable (a write lock taken and given back) and migrated to this code's version.
    `target`: the SQLite file, or the PostgreSQL URL (shown with its password redacted)."""
    if isinstance(target, str) and is_postgres_url(target):
        return _postgres_finding(target)
    path = Path(target)
    if not path.exists():
        if path.parent.is_dir():
            return ok("database", f"{path} does not exist yet; the bot creates it at start.")
        return fail("database", f"{path}: its folder does not exist.", "set CHATOPS_DB.")
    try:
        db = sqlite3.connect(path, timeout=DB_TIMEOUT_S, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")
            row = db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        return fail(
            "database",
            f"{path} cannot be written: {exc}.",
            "give the bot's user write access to the file and its folder.",
        )
    return _version_finding(str(path), int(row[0] or 0))


def _postgres_finding(url: str) -> Finding:
    from store.backends.postgres import postgres_state  # psycopg: only when used

    shown = redact(url)
    state = postgres_state(url)
    if state.problem is not None:
        return fail(
            "database",
            f"{shown} cannot be used: {state.problem}",
            "check CHATOPS_DATABASE_URL (host, port, database, user, password) and that the "
            "user may create tables and write in it.",
        )
    if state.version is None:
        return ok("database", f"{shown} is writable and empty; the bot migrates it at start.")
    return _version_finding(shown, state.version)


def _version_finding(shown: str, version: int) -> Finding:
    latest = max(version for version, _, _ in MIGRATIONS)
    if version != latest:
        return fail(
            "database",
            f"{shown} is at schema version {version}; this code has {latest}.",
            f"back it up ({'pg_dump' if shown.startswith('postgres') else '`chatops-bot backup`'})"
            " and start this version of the bot, which migrates it."
            if version < latest
            else "run the bot version that wrote it.",
        )
    return ok("database", f"{shown} is writable and at schema version {latest}.")


async def diagnose(
    *,
    config_path: Path,
    db_path: Path | str,
    slack: AsyncWebClient | None,
    aws: AwsReaders | None,
    scopes: Sequence[str] = BOT_SCOPES,
) -> list[Finding]:
    """Every check, in order: config, database, Slack, AWS. `slack`/`aws` None: not checked."""
    found, config = config_findings(config_path)
    found.append(await asyncio.to_thread(database_finding, db_path))
    if config is None:
        return found
    if slack is None:
        found.append(not_checked("slack", "SLACK_BOT_TOKEN is not set."))
    else:
        found += await slack_findings(slack, config, manifest_scopes=scopes)
    if aws is None:
        found.append(not_checked("aws", "skipped (--no-aws)."))
    else:
        found += await aws_findings(config, aws)
    return found
