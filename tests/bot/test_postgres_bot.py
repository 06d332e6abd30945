"""The whole bot on PostgreSQL (CHATOPS_DATABASE_URL): a production deploy requested, approved
once, the bot restarted, approved again, rolled out and audited, every record in PostgreSQL and
none in the SQLite file."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from bot.deploy.views import APPROVE_ACTION
from bot.settings import Settings
from store.audit import AuditLog
from store.db import Store
from store.deploy.models import DeploymentState
from store.deploy.repository import Deployments
from tests.driver import BotDriver, last_card, plan_cards, run_id_of
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.slack_api import FakeSlack


@pytest.fixture
def settings(settings: Settings, pg_url: str) -> Settings:
    # No SQLite file at all, so the test can see that none is made.
    settings.db_path.unlink()
    return settings.model_copy(update={"database_url": SecretStr(pg_url)})


async def test_a_deploy_approved_across_a_restart_is_recorded_in_postgresql(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld, settings: Settings, pg_url: str
) -> None:
    assert bot.runtime.store.is_postgres
    await bot.command("production api-gateway", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[0])
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")

    await bot.restart()
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2")

    assert world.version("production", "api-gateway") == "v1.3.0"
    assert "✅ Production deployment successful" in last_card(slack)
    store = await Store.open(pg_url)
    try:
        run = await Deployments(store).get(run_id)
        audit = await AuditLog(store).recent()
    finally:
        await store.close()
    assert run is not None
    assert run.state is DeploymentState.SUCCEEDED
    assert run.approved_by == ("UAPPROVER1", "UAPPROVER2")
    assert [e.actor for e in reversed(audit)] == ["UDEV", "UAPPROVER1", "UAPPROVER2"]
    assert not settings.db_path.exists()
