"""`chatops-bot migrate-db --to postgresql://…` copies the SQLite database into an empty
PostgreSQL one, on a real cluster (tests/fakes/postgres.py): every row, in one transaction,
counts checked and printed; ids go on after the copied ones; a database holding rows is
refused; the URL's password is never printed."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from bot.main import EXIT_MIGRATE_FAILED, main
from store.audit import AuditEntry, AuditLog
from store.db import Store
from store.deploy.locks import Locks
from store.deploy.models import Decision, StageEvent
from store.deploy.repository import Deployments
from store.deploy.stages import RolloutStages
from store.incident.repository import Incidents
from store.requests import OpenRequests, SeenRequests
from tests.fakes.postgres import PASSWORD
from tests.store.test_deployments import T0, make_run
from tests.store.test_incidents import make_incident


async def _fill(path: Path) -> None:
    """A SQLite database with a run (approved twice, in the same second), its events and a
    canary stage, an incident, audit rows, a lock, a replay key and an open request."""
    store = await Store.open(path)
    try:
        runs = Deployments(store)
        await runs.create(make_run("run-1", services=("api-gateway", "auth-svc")))
        for user in ("UZED", "UAMY"):  # the same `at`: SQLite's rowid keeps their order
            await runs.record_decision("run-1", user_id=user, decision=Decision.APPROVE, at=T0)
        run = make_run("run-1").id
        for stage in ("preflight", "rollout"):
            await runs.record_event(
                StageEvent(deployment_id=run, at=T0, stage=stage, status="done")
            )
        await RolloutStages(store).start(run, position=0, weight=5, bake_s=2.5, at=T0)
        await Incidents(store).create(make_incident())
        audit = AuditLog(store)
        for actor in ("U1", "U2", "U3"):
            await audit.record(AuditEntry(at=T0, actor=actor, action="/deploy", outcome="ok"))
        await Locks(store).take("production", holder="UOPS", reason="db work", at=T0, until=None)
        await SeenRequests(store).first_sight("sig-1", expires_at=T0 + timedelta(minutes=5), now=T0)
        await OpenRequests(store).open(
            at=T0, actor="UDEV", action="/deploy", channel_id="CDEPLOYS", ref=None
        )
    finally:
        await store.close()


async def _migrate(args: list[str], db: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("CHATOPS_DB", str(db))
    return await asyncio.to_thread(main, ["migrate-db", *args])


async def test_every_row_is_copied_counted_and_readable_through_the_repositories(
    tmp_path: Path,
    pg_empty_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = tmp_path / "chatops.db"
    await _fill(source)
    sqlite = await Store.open(source)
    before = await Deployments(sqlite).get("run-1")
    await sqlite.close()

    status = await _migrate(["--to", pg_empty_url], source, monkeypatch)

    out, err = capsys.readouterr()
    assert status == 0, err
    assert PASSWORD not in out + err
    assert "postgresql://chatops:***@127.0.0.1" in out
    lines = {line.split()[0]: " ".join(line.split()[1:]) for line in out.splitlines()[1:-1]}
    assert lines["deployments"] == "1 row"
    assert lines["deployment_targets"] == "2 rows"
    assert lines["approvals"] == "2 rows"
    assert lines["deployment_events"] == "2 rows"
    assert lines["rollout_stages"] == "1 row"
    assert lines["incidents"] == "1 row"
    assert lines["audit_log"] == "3 rows"
    assert lines["locks"] == "1 row"
    assert lines["seen_requests"] == "1 row"
    assert lines["open_requests"] == "1 row"
    assert lines["watches"] == "0 rows"
    assert "each table's count checked" in out

    pg = await Store.open(pg_empty_url)
    try:
        after = await Deployments(pg).get("run-1")
        assert after == before
        assert after is not None
        assert [a.user_id for a in after.approvals] == ["UZED", "UAMY"]
        assert after.stages[0].bake_s == 2.5
        assert await Incidents(pg).get("inc-1") == make_incident()
        lock = await Locks(pg).get("production")
        assert lock is not None
        assert lock.holder == "UOPS"
        # The identity sequences go on after the copied ids.
        audit = AuditLog(pg)
        await audit.record(AuditEntry(at=T0, actor="U4", action="/deploy", outcome="ok"))
        assert [e.actor for e in await audit.recent()] == ["U4", "U3", "U2", "U1"]
        journal = OpenRequests(pg)
        copied = [r.id for r in await journal.left_open()]
        new = await journal.open(at=T0, actor="U5", action="/deploy", channel_id=None, ref=None)
        assert new > max(copied)
    finally:
        await pg.close()


async def test_a_database_that_holds_rows_is_refused_and_left_as_it_was(
    tmp_path: Path,
    pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = tmp_path / "chatops.db"
    await _fill(source)
    pg = await Store.open(pg_url)
    await AuditLog(pg).record(AuditEntry(at=T0, actor="UPG", action="/deploy", outcome="ok"))
    await pg.close()

    status = await _migrate(["--to", pg_url], source, monkeypatch)

    out, err = capsys.readouterr()
    assert status == EXIT_MIGRATE_FAILED
    assert out == ""
    assert "is not empty: rows are already in audit_log." in err
    assert "create a new database" in err
    assert PASSWORD not in err
    pg = await Store.open(pg_url)
    try:
        assert [e.actor for e in await AuditLog(pg).recent()] == ["UPG"]
        assert await Deployments(pg).get("run-1") is None
    finally:
        await pg.close()


async def test_an_unreachable_database_is_named_without_its_password(
    tmp_path: Path,
    pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = tmp_path / "chatops.db"
    await _fill(source)
    missing = pg_url.rsplit("/", 1)[0] + "/no_such_database"

    status = await _migrate(["--to", missing], source, monkeypatch)

    err = capsys.readouterr().err
    assert status == EXIT_MIGRATE_FAILED
    assert 'database "no_such_database" does not exist' in err
    assert "Nothing was copied" in err
    assert PASSWORD not in err


async def test_the_target_must_be_a_postgresql_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    status = await _migrate(["--to", "mysql://u:pw@db/x"], tmp_path / "c.db", monkeypatch)

    err = capsys.readouterr().err
    assert status != 0
    assert "--to must be a postgresql:// URL, not mysql://u:***@db/x" in err
