"""`chatops-bot backup PATH` copies the database while the bot runs, and the bot's audit rows and
replay keys are pruned on a schedule (issue 19, point 7)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from bot.main import EXIT_BACKUP_FAILED, main
from bot.runtime import schedule
from bot.settings import Settings
from store.audit import AuditLog
from store.db import Store
from store.deploy.repository import Deployments
from store.migrations import MIGRATIONS
from tests.driver import BotDriver, plan_cards, run_id_of
from tests.fakes.slack_api import FakeSlack


@pytest.fixture(autouse=True)
def _in_empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"audit_retention_days": 7.0})


async def test_a_backup_taken_while_the_bot_runs_holds_its_latest_deploy(
    bot: BotDriver,
    slack: FakeSlack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await bot.command("staging api-gateway v1.4.0", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[0])
    monkeypatch.setenv("CHATOPS_DB", str(bot.settings.db_path))
    target = tmp_path / "copy.db"

    status = await asyncio.to_thread(main, ["backup", str(target)])

    assert status == 0
    out = capsys.readouterr().out
    assert f"schema version {max(v for v, _, _ in MIGRATIONS)}, 1 deployment" in out
    assert "integrity check ok" in out
    copy = await Store.open(target)
    try:
        run = await Deployments(copy).get(run_id)
        audit = await AuditLog(copy).recent()
    finally:
        await copy.close()
    assert run is not None
    assert run.state == (await bot.runtime.runs.get(run_id)).state
    assert [e.actor for e in audit] == ["UDEV"]


def test_a_backup_never_overwrites_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "bot.db"
    sqlite3.connect(source).close()
    monkeypatch.setenv("CHATOPS_DB", str(source))
    target = tmp_path / "earlier.db"
    target.write_bytes(b"yesterday's backup")

    status = main(["backup", str(target)])

    assert status == EXIT_BACKUP_FAILED
    assert f"{target} already exists; choose a new file name." in capsys.readouterr().err
    assert target.read_bytes() == b"yesterday's backup"


def test_a_backup_of_a_missing_database_names_the_setting_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHATOPS_DB", str(tmp_path / "nowhere.db"))

    status = main(["backup", str(tmp_path / "copy.db")])

    assert status == EXIT_BACKUP_FAILED
    assert "Set CHATOPS_DB to the bot's file." in capsys.readouterr().err
    assert not (tmp_path / "nowhere.db").exists()
    assert not (tmp_path / "copy.db").exists()


async def test_the_prune_job_deletes_audit_rows_past_the_configured_age(bot: BotDriver) -> None:
    await bot.command("help", user="UOLD")
    bot.clock.advance(timedelta(days=6).total_seconds())
    await bot.command("help", user="UWEEK")
    bot.clock.advance(timedelta(days=1, minutes=1).total_seconds())
    await bot.command("help", user="UNEW")

    await bot.runtime.prune()

    assert [e.actor for e in await bot.runtime.audit.recent()] == ["UNEW", "UWEEK"]


async def test_pruning_is_scheduled_at_start_up_and_then_every_interval(bot: BotDriver) -> None:
    scheduler = schedule(bot.runtime)
    try:
        job = scheduler.get_job("prune")
    finally:
        scheduler.shutdown(wait=False)

    assert job is not None
    assert job.trigger.interval == timedelta(seconds=bot.settings.prune_interval_s)
