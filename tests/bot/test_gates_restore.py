"""`/deploy restore-db <deployment-id>` through signed requests, the strict local Slack and moto
(ECS, RDS): a deploy's snapshot restored to a NEW instance after the environment's approvals,
its endpoint reported, recorded and audited; a deploy without a backup is refused privately."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.deploy.views import APPROVE_ACTION, REJECT_ACTION
from pipeline.kernel.config import Config
from store.deploy.models import DeploymentState, RunKind
from tests.conftest import config_dict
from tests.driver import BotDriver, plan_cards, run_id_of
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.gates_world import GatesWorld
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack

LIVE_DB = "skillancer-prod-db"


@pytest.fixture
def gates(world: EcsWorld) -> GatesWorld:
    estate = GatesWorld()
    estate.database(LIVE_DB)
    return estate


@pytest.fixture
def config(health: FakeHealth, gates: GatesWorld) -> Config:
    """Production backs up its database before auth-svc's migration."""
    data = config_dict(health)
    network = {"subnets": [gates.subnet], "security_groups": [gates.security_group]}
    for env in data["environments"].values():
        env["network"] = network
    data["environments"]["production"]["database"] = {"instance": LIVE_DB}
    data["services"]["auth-svc"]["migration"] = {"command": ["pnpm", "prisma", "migrate"]}
    return Config.model_validate(data)


def said(slack: FakeSlack) -> str:
    """The last reply the bot sent through a response_url, checked to be private."""
    reply = slack.responses[-1]
    assert reply["response_type"] == "ephemeral"
    return str(reply["text"])


def instances(gates: GatesWorld) -> dict[str, dict[str, Any]]:
    """Every RDS instance by id: what a restore must never change of the live one."""
    kept = ("DBInstanceStatus", "Endpoint", "InstanceCreateTime", "DBInstanceClass", "Engine")
    return {
        i["DBInstanceIdentifier"]: {k: i.get(k) for k in kept}
        for i in gates.rds.describe_db_instances()["DBInstances"]
    }


async def deploy(bot: BotDriver, slack: FakeSlack, services: str) -> str:
    """Request and approve a production deploy of `services`; its id once it ran."""
    await bot.command(f"production {services}", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[-1])
    await approve(bot, run_id)
    assert (await bot.runtime.runs.get(run_id)).state is DeploymentState.SUCCEEDED
    return run_id


async def approve(bot: BotDriver, run_id: str) -> None:
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2")


async def restore_card(bot: BotDriver, slack: FakeSlack, deploy_id: str) -> str:
    """Ask for a restore of `deploy_id`'s backup; the id of the restore's card."""
    await bot.command(f"restore-db {deploy_id}", user="UDBA")
    card = str(plan_cards(slack)[-1]["blocks"])
    assert "Restore the database of production" in card
    found = re.search(r"Restore `([^`]+)`", card)
    assert found is not None
    return found.group(1)


class TestRestore:
    async def test_the_snapshot_goes_to_a_new_instance_after_the_approvals(
        self, bot: BotDriver, slack: FakeSlack, gates: GatesWorld
    ) -> None:
        deploy_id = await deploy(bot, slack, "auth-svc")
        backup = (await bot.runtime.runs.get(deploy_id)).backup_id
        assert backup is not None
        live = instances(gates)[LIVE_DB]

        restore_id = await restore_card(bot, slack, deploy_id)
        assert list(instances(gates)) == [LIVE_DB]
        await approve(bot, restore_id)

        run = await bot.runtime.runs.get(restore_id)
        assert (run.kind, run.state) == (RunKind.RESTORE, DeploymentState.SUCCEEDED)
        assert run.restore is not None
        new_id = run.restore.instance
        assert new_id.startswith(f"restore-{deploy_id}-")
        assert sorted(instances(gates)) == sorted([LIVE_DB, new_id])
        new = instances(gates)[new_id]
        assert run.restore.endpoint == f"{new['Endpoint']['Address']}:{new['Endpoint']['Port']}"
        assert instances(gates)[LIVE_DB] == live

    async def test_the_card_names_the_snapshot_the_new_instance_and_then_its_endpoint(
        self, bot: BotDriver, slack: FakeSlack, gates: GatesWorld
    ) -> None:
        deploy_id = await deploy(bot, slack, "auth-svc")
        backup = (await bot.runtime.runs.get(deploy_id)).backup_id

        restore_id = await restore_card(bot, slack, deploy_id)
        asked = str(plan_cards(slack)[-1]["blocks"])
        await approve(bot, restore_id)

        plan = (await bot.runtime.runs.get(restore_id)).restore
        assert plan is not None
        assert (
            f"Snapshot `{backup}` of deployment `{deploy_id}` → a NEW instance "
            f"`{plan.instance}`. The live instance `{LIVE_DB}` is not touched."
        ) in asked
        assert "approvals 0/2" in asked
        assert (
            f"✅ Database restored to the new instance `{plan.instance}`: endpoint "
            f"`{plan.endpoint}`."
        ) in str(slack.of("chat.update")[-1]["blocks"])

    async def test_a_second_restore_of_the_same_backup_gets_an_instance_of_its_own(
        self, bot: BotDriver, slack: FakeSlack, gates: GatesWorld
    ) -> None:
        deploy_id = await deploy(bot, slack, "auth-svc")
        first = await restore_card(bot, slack, deploy_id)
        await approve(bot, first)

        second = await restore_card(bot, slack, deploy_id)
        await approve(bot, second)

        made = [(await bot.runtime.runs.get(r)).restore for r in (first, second)]
        names = [m.instance for m in made if m is not None]
        assert len(set(names)) == 2
        assert sorted(instances(gates)) == sorted([LIVE_DB, *names])

    async def test_a_rejected_restore_restores_nothing(
        self, bot: BotDriver, slack: FakeSlack, gates: GatesWorld
    ) -> None:
        deploy_id = await deploy(bot, slack, "auth-svc")
        restore_id = await restore_card(bot, slack, deploy_id)

        await bot.click(REJECT_ACTION, restore_id, user="UAPPROVER1")

        assert (await bot.runtime.runs.get(restore_id)).state is DeploymentState.REJECTED
        assert list(instances(gates)) == [LIVE_DB]
        card = str(slack.of("chat.update")[-1]["blocks"])
        assert "🛑 Rejected by <@UAPPROVER1>. Nothing was restored." in card

    async def test_the_restore_is_recorded_and_audited(
        self, bot: BotDriver, slack: FakeSlack, gates: GatesWorld
    ) -> None:
        deploy_id = await deploy(bot, slack, "auth-svc")
        restore_id = await restore_card(bot, slack, deploy_id)
        await approve(bot, restore_id)

        entries = [
            (e.actor, e.action, e.outcome, e.detail) for e in await bot.runtime.audit.recent()
        ]
        assert ("UDBA", f"/deploy restore-db {deploy_id}", "planned", restore_id) in entries
        assert (
            "UAPPROVER2",
            f"click approve {restore_id}",
            "approved",
            restore_id,
        ) in entries
        [latest, *_] = await bot.runtime.deploy.history("production")
        assert (latest.id, latest.requested_by, latest.kind) == (
            restore_id,
            "UDBA",
            RunKind.RESTORE,
        )


class TestRefusals:
    async def test_a_deploy_without_a_backup_is_refused_privately(
        self, bot: BotDriver, slack: FakeSlack, gates: GatesWorld
    ) -> None:
        """market-svc has no migration, so its deploy took no snapshot."""
        deploy_id = await deploy(bot, slack, "market-svc")
        cards = len(plan_cards(slack))

        await bot.command(f"restore-db {deploy_id}", user="UDBA")

        assert said(slack).startswith(
            f"Deployment `{deploy_id}` took no database backup (it ran no migration, or "
            "`production` has no `database`), so there is nothing to restore."
        )
        assert len(plan_cards(slack)) == cards
        assert [r.kind for r in await bot.runtime.deploy.history(None)] == [RunKind.DEPLOY]
        assert list(instances(gates)) == [LIVE_DB]

    async def test_an_unknown_deployment_is_refused_privately(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        await bot.command("restore-db 123-abc", user="UDBA")

        assert said(slack).startswith("No deployment has the id `123-abc`.")
        assert await bot.runtime.deploy.history(None) == []

    @pytest.mark.parametrize("text", ["restore-db", "restore-db 1 2"])
    async def test_restore_db_needs_exactly_one_deployment_id(
        self, bot: BotDriver, text: str
    ) -> None:
        reply = await bot.command(text, user="UDBA")

        assert reply["body"]["response_type"] == "ephemeral"
        assert reply["body"]["text"].startswith(
            "Say which deployment's backup to restore: `/deploy restore-db <deployment-id>`."
        )
