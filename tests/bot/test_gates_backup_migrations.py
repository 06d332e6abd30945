"""The verified backup and the migrations of a deploy, through signed requests, the strict
local Slack, moto (ECS, RDS, EC2) and the injected clock: the snapshot named after the run,
the one-off task of the new revision, and every way they halt the run before a service
changes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from bot.deploy.views import APPROVE_ACTION
from pipeline.aws import BotoEcs
from pipeline.kernel.config import Config
from store.deploy.models import Deployment, DeploymentState
from tests.conftest import config_dict
from tests.driver import BotDriver, plan_cards, run_id_of, thread
from tests.fakes.clock import FakeClock
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.gates_world import (
    GatesWorld,
    HookedClock,
    finish_tasks,
    run_in_awsvpc_with_logs,
    set_snapshot_status,
    task_network,
    tasks_run_until_ended,
)
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack

CLUSTER = "skillancer-production"
DB = "skillancer-prod-db"
MIGRATE = ["pnpm", "prisma", "migrate", "deploy"]
LOG_GROUP = "/ecs/skillancer-production-auth-svc"


class MigrationClock(HookedClock):
    """Virtual time in which the production cluster's one-off tasks end with `exit_code` the
    first time the bot waits; None: they never end."""

    def __init__(self) -> None:
        super().__init__()
        self.exit_code: int | None = 0
        self.on_sleep = self._end_tasks

    def _end_tasks(self, seconds: float) -> None:
        if self.exit_code is not None:
            finish_tasks(CLUSTER, self.exit_code)


@pytest.fixture
def clock() -> MigrationClock:
    return MigrationClock()


@pytest.fixture(autouse=True)
def _tasks_end_when_told() -> Iterator[None]:
    with tasks_run_until_ended():
        yield


@pytest.fixture
def gates(world: EcsWorld) -> GatesWorld:
    """A production database, and auth-svc in awsvpc mode logging to CloudWatch."""
    estate = GatesWorld()
    estate.database(DB)
    run_in_awsvpc_with_logs(world.client, cluster=CLUSTER, service="auth-svc", log_group=LOG_GROUP)
    return estate


def gated_config(health: FakeHealth, gates: GatesWorld) -> dict[str, Any]:
    data = config_dict(health)
    for env in data["environments"].values():
        env["network"] = {"subnets": [gates.subnet], "security_groups": [gates.security_group]}
    data["environments"]["production"]["database"] = {
        "instance": DB,
        "snapshot_timeout": "10m",
    }
    data["services"]["auth-svc"]["migration"] = {"command": MIGRATE, "timeout": "20m"}
    return data


@pytest.fixture
def config(health: FakeHealth, gates: GatesWorld) -> Config:
    return Config.model_validate(gated_config(health, gates))


async def request(bot: BotDriver, slack: FakeSlack, services: str = "auth-svc") -> str:
    await bot.command(f"production {services}", user="UDEV")
    return run_id_of(plan_cards(slack)[-1])


async def approve(bot: BotDriver, run_id: str) -> Deployment:
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2")
    return await bot.runtime.runs.get(run_id)


async def card_of(bot: BotDriver, slack: FakeSlack, run_id: str) -> str:
    """A run's card as Slack shows it now, as searchable text."""
    run = await bot.runtime.runs.get(run_id)
    assert run.channel_id is not None
    [card] = [m for m in slack.workspace.channel(run.channel_id).messages if m.ts == run.message_ts]
    return str(card.blocks)


def service_deployments(world: EcsWorld, service: str) -> int:
    """How many deployments ECS has for a service: 1 until an UpdateService moves it."""
    svc = world.client.describe_services(cluster=CLUSTER, services=[service])["services"][0]
    return len(svc["deployments"])


def snapshots(gates: GatesWorld) -> dict[str, str]:
    found = gates.rds.describe_db_snapshots(DBInstanceIdentifier=DB, SnapshotType="manual")[
        "DBSnapshots"
    ]
    return {s["DBSnapshotIdentifier"]: s["Status"] for s in found}


def tasks(world: EcsWorld) -> list[dict[str, Any]]:
    arns = world.client.list_tasks(cluster=CLUSTER, desiredStatus="STOPPED")["taskArns"]
    arns += world.client.list_tasks(cluster=CLUSTER)["taskArns"]
    if not arns:
        return []
    return list(world.client.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"])


class TestTheBackup:
    async def test_a_migrating_deploy_snapshots_the_database_named_after_the_run_first(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld, gates: GatesWorld
    ) -> None:
        run_id = await request(bot, slack)

        run = await approve(bot, run_id)

        assert run.state is DeploymentState.SUCCEEDED
        assert snapshots(gates) == {f"chatops-{run_id}": "available"}
        assert run.backup_id == f"chatops-{run_id}"
        assert f"💾 Backup: snapshot `chatops-{run_id}` (kept)" in await card_of(bot, slack, run_id)
        said = thread(slack)
        backup = said.index(f"✅ backup done: snapshot `chatops-{run_id}` is available")
        migrated = next(i for i, t in enumerate(said) if "migrate done" in t)
        # Issue 16: a service's steps are said grouped, once it is rolled out.
        updated = next(i for i, t in enumerate(said) if "rolled out and healthy" in t)
        assert backup < migrated < updated

    async def test_a_deploy_without_a_migration_takes_no_snapshot(
        self, bot: BotDriver, slack: FakeSlack, gates: GatesWorld
    ) -> None:
        run_id = await request(bot, slack, "market-svc")

        run = await approve(bot, run_id)

        assert run.state is DeploymentState.SUCCEEDED
        assert snapshots(gates) == {}
        assert run.backup_id is None

    async def test_a_failed_snapshot_halts_the_run_before_any_service_changes(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld, gates: GatesWorld
    ) -> None:
        before = world.task_definition("production", "auth-svc")
        run_id = await request(bot, slack, "auth-svc,market-svc")
        gates.rds.create_db_snapshot(
            DBSnapshotIdentifier=f"chatops-{run_id}", DBInstanceIdentifier=DB
        )
        set_snapshot_status(f"chatops-{run_id}", "failed")

        run = await approve(bot, run_id)

        assert run.state is DeploymentState.ROLLED_BACK
        assert run.error == f"The snapshot `chatops-{run_id}` is failed."
        assert world.task_definition("production", "auth-svc") == before
        assert service_deployments(world, "auth-svc") == 1
        assert service_deployments(world, "market-svc") == 1
        assert tasks(world) == []
        card = await card_of(bot, slack, run_id)
        assert "Production deployment FAILED" in card
        assert "It stopped before any service changed: nothing to roll back." in card

    async def test_a_snapshot_still_creating_at_its_deadline_halts_the_run(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld, gates: GatesWorld, clock: FakeClock
    ) -> None:
        run_id = await request(bot, slack)
        gates.rds.create_db_snapshot(
            DBSnapshotIdentifier=f"chatops-{run_id}", DBInstanceIdentifier=DB
        )
        set_snapshot_status(f"chatops-{run_id}", "creating")
        started = clock.now()

        run = await approve(bot, run_id)

        assert run.state is DeploymentState.ROLLED_BACK
        assert run.error == (
            f"The snapshot `chatops-{run_id}` was not available within 10m (it is creating)."
        )
        assert (clock.now() - started).total_seconds() >= 600
        assert service_deployments(world, "auth-svc") == 1
        assert tasks(world) == []
        assert run.backup_id is None


class TestTheMigration:
    async def test_the_migration_is_a_one_off_task_of_the_new_revision_in_the_network(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld, gates: GatesWorld
    ) -> None:
        run_id = await request(bot, slack)

        run = await approve(bot, run_id)

        [task] = tasks(world)
        [target] = run.targets
        assert run.state is DeploymentState.SUCCEEDED
        assert task["taskDefinitionArn"] == target.new_task_def
        assert task["overrides"]["containerOverrides"] == [{"name": "auth-svc", "command": MIGRATE}]
        assert task_network(CLUSTER, task["taskArn"]) == {
            "subnets": [gates.subnet],
            "securityGroups": [gates.security_group],
            "assignPublicIp": "DISABLED",
        }
        assert world.task_definition("production", "auth-svc") == target.new_task_def
        assert "🗄️ Migration `auth-svc`: done (exit code 0)" in await card_of(bot, slack, run_id)

    async def test_a_migration_exiting_1_fails_the_run_before_services_change_keeping_the_backup(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        world: EcsWorld,
        gates: GatesWorld,
        clock: MigrationClock,
    ) -> None:
        before = world.task_definition("production", "auth-svc")
        clock.exit_code = 1
        run_id = await request(bot, slack, "auth-svc,market-svc")

        run = await approve(bot, run_id)

        assert run.state is DeploymentState.ROLLED_BACK
        assert world.task_definition("production", "auth-svc") == before
        assert service_deployments(world, "auth-svc") == 1
        assert service_deployments(world, "market-svc") == 1
        assert snapshots(gates) == {f"chatops-{run_id}": "available"}
        [task] = tasks(world)
        task_id = task["taskArn"].rsplit("/", 1)[-1]
        card = await card_of(bot, slack, run_id)
        assert "🗄️ Migration `auth-svc`: *failed*: exit code 1 · <https://" in card
        assert (
            f"log-group/$252Fecs$252Fskillancer-production-auth-svc/log-events/ecs$252Fauth-svc$252F{task_id}|logs>"
            in card
        )
        assert f"💾 Backup: snapshot `chatops-{run_id}` (kept)" in card
        assert (
            "The migration of `auth-svc` exited 1, so no service was changed; the backup is kept."
            in card
        )

    async def test_a_migration_that_does_not_end_in_time_fails_the_run(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld, clock: MigrationClock
    ) -> None:
        clock.exit_code = None
        run_id = await request(bot, slack)

        run = await approve(bot, run_id)

        assert run.state is DeploymentState.ROLLED_BACK
        assert run.error == (
            "The migration of `auth-svc` did not finish within 20m; the backup is kept."
        )
        assert service_deployments(world, "auth-svc") == 1

    async def test_a_failed_migration_where_no_backup_was_taken_speaks_of_none(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld, clock: MigrationClock
    ) -> None:
        """Issue 16: staging has no `[database]`, so no backup exists to be kept."""
        clock.on_sleep = lambda seconds: finish_tasks("skillancer-staging", 1)

        await bot.command("staging auth-svc v1.4.0", user="UDEV")

        run = await bot.runtime.runs.get(run_id_of(plan_cards(slack)[-1]))
        assert run.state is DeploymentState.ROLLED_BACK
        assert run.error == "The migration of `auth-svc` exited 1, so no service was changed."
        assert "backup" not in await card_of(bot, slack, run.id)


class TestBadMigrationConfig:
    async def test_a_migration_container_the_task_definition_lacks_is_refused_before_running(
        self,
        health: FakeHealth,
        gates: GatesWorld,
        world: EcsWorld,
        slack: FakeSlack,
        settings: Any,
        clock: MigrationClock,
    ) -> None:
        """ECS would start the task and ignore an override naming no container."""
        data = gated_config(health, gates)
        data["services"]["auth-svc"]["migration"]["container"] = "migrator"
        bot = BotDriver(
            settings=settings,
            config=Config.model_validate(data),
            clock=clock,
            ecs=BotoEcs(),
            slack=slack,
        )
        await bot.start()
        try:
            run_id = await request(bot, slack)
            run = await approve(bot, run_id)
        finally:
            await bot.stop()

        assert run.state is DeploymentState.ROLLED_BACK
        assert run.error is not None
        assert "has no container `migrator`" in run.error
        assert "Fix `services.auth-svc.migration.container` in chatops.toml" in run.error
        assert tasks(world) == []
        assert service_deployments(world, "auth-svc") == 1

    def test_a_migration_without_a_network_in_every_environment_is_refused_naming_the_key(
        self, health: FakeHealth, gates: GatesWorld
    ) -> None:
        data = gated_config(health, gates)
        del data["environments"]["staging"]["network"]

        with pytest.raises(
            ValidationError, match=r"services\.auth-svc\.migration needs a `network`"
        ):
            Config.model_validate(data)

    def test_a_migration_with_an_empty_command_is_refused(
        self, health: FakeHealth, gates: GatesWorld
    ) -> None:
        data = gated_config(health, gates)
        data["services"]["auth-svc"]["migration"]["command"] = []

        with pytest.raises(ValidationError, match=r"services\.auth-svc\.migration\.command"):
            Config.model_validate(data)
