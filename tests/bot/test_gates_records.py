"""The runbook's records in S3 (seed 003), through signed requests, the strict local Slack,
moto (ECS, RDS, S3) and the injected clock: the deployment record, the failure report and the
rollback instructions, retried and never holding up a run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bot.deploy.views import APPROVE_ACTION
from pipeline.kernel.config import Config
from store.deploy.models import Deployment, DeploymentState
from tests.conftest import STAGING_PATH, config_dict
from tests.driver import BotDriver, plan_cards, run_id_of, thread
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.gates_world import GatesWorld, HookedClock, finish_tasks, tasks_run_until_ended
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack

CLUSTER = "skillancer-production"
DB = "skillancer-prod-db"
BUCKET = "skillancer-deploy-records"
PREFIX = "production/"
# Seed 003's "Record Contents" that the bot can know (it has no git: no git_sha, git_ref).
SEED_RECORD_FIELDS = {
    "timestamp",
    "deployment_id",
    "version",
    "environment",
    "status",
    "triggered_by",
    "services_deployed",
    "database_backup",
    "migrations_applied",
    "health_checks",
    "rollback_available",
    "rollback_window_minutes",
    "rollback_deadline",
}


@pytest.fixture
def clock() -> HookedClock:
    """Migration tasks end with exit code 0 the first time the bot waits on them."""
    fake = HookedClock()
    fake.on_sleep = lambda seconds: finish_tasks(CLUSTER, 0)
    return fake


@pytest.fixture(autouse=True)
def _tasks_end_when_told() -> Iterator[None]:
    with tasks_run_until_ended():
        yield


@pytest.fixture
def gates(world: EcsWorld) -> GatesWorld:
    estate = GatesWorld()
    estate.database(DB)
    return estate


@pytest.fixture
def config(health: FakeHealth, gates: GatesWorld) -> Config:
    data = config_dict(health)
    for env in data["environments"].values():
        env["network"] = {"subnets": [gates.subnet], "security_groups": [gates.security_group]}
    prod = data["environments"]["production"]
    prod["database"] = {"instance": DB}
    prod["records"] = {"bucket": BUCKET, "prefix": PREFIX}
    data["services"]["auth-svc"]["migration"] = {"command": ["pnpm", "prisma", "migrate"]}
    return Config.model_validate(data)


async def deploy(bot: BotDriver, slack: FakeSlack, services: str = "auth-svc") -> Deployment:
    await bot.command(f"production {services}", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[-1])
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2")
    return await bot.runtime.runs.get(run_id)


def keys(run_id: str, *names: str) -> set[str]:
    return {f"{PREFIX}{name}-{run_id}.json" for name in names}


def breaks_when_new(world: EcsWorld, service: str) -> Any:
    """Health answers: `service`'s production endpoint fails while it runs v1.3.0."""

    def status(name: str, path: str) -> int:
        if name != service or path.startswith(STAGING_PATH):
            return 200
        return 503 if world.version("production", service) == "v1.3.0" else 200

    return status


async def test_a_successful_run_writes_the_seed_record_and_the_rollback_instructions(
    bot: BotDriver, slack: FakeSlack, gates: GatesWorld, clock: HookedClock
) -> None:
    gates.bucket(BUCKET)

    run = await deploy(bot, slack)

    objects = gates.objects(BUCKET)
    assert set(objects) == keys(run.id, "deployment-record", "rollback-instructions")
    assert set(run.records_written) == set(objects)
    record = objects[f"{PREFIX}deployment-record-{run.id}.json"]
    assert set(record) >= SEED_RECORD_FIELDS
    assert record["deployment_id"] == run.id
    assert record["version"] == "v1.3.0"
    assert record["environment"] == "production"
    assert record["status"] == "success"
    assert record["triggered_by"] == "UDEV"
    assert record["services_deployed"] == ["auth-svc"]
    assert record["health_checks"] == {"auth_svc": "healthy"}
    assert record["migrations_applied"] == 1
    assert record["database_backup"]["backup_id"] == f"chatops-{run.id}"
    assert record["database_backup"]["timestamp"].endswith("Z")
    assert record["rollback_available"] is True
    assert record["rollback_window_minutes"] == 60
    assert record["rollback_deadline"] == "2026-11-22T10:00:15Z"
    assert record["timestamp"] == "2026-11-22T09:00:15Z"
    instructions = objects[f"{PREFIX}rollback-instructions-{run.id}.json"]
    assert instructions["chat"] == "/rollback production all"
    assert instructions["restore_database"] == f"/deploy restore-db {run.id}"
    [step] = instructions["steps"]
    assert step["to_version"] == "v1.2.0"
    assert "--service auth-svc --task-definition" in step["command"]


async def test_a_rolled_back_run_reports_the_failed_stage_error_backup_and_what_went_back(
    bot: BotDriver, slack: FakeSlack, gates: GatesWorld, health: FakeHealth, world: EcsWorld
) -> None:
    gates.bucket(BUCKET)
    health.status_for = breaks_when_new(world, "market-svc")

    run = await deploy(bot, slack, "auth-svc,market-svc")

    objects = gates.objects(BUCKET)
    assert run.state is DeploymentState.ROLLED_BACK
    assert set(objects) == keys(
        run.id, "deployment-record", "deployment-failure-report", "rollback-instructions"
    )
    report = objects[f"{PREFIX}deployment-failure-report-{run.id}.json"]
    assert report["failed_stage"] == "health_check"
    assert report["error"] == run.error
    assert "`market-svc` failed its health check" in report["error"]
    assert report["database_backup"] == f"chatops-{run.id}"
    assert report["failed_services"] == ["market-svc"]
    assert sorted(report["rolled_back"]) == ["auth-svc", "market-svc"]
    assert report["action_required"] is False
    record = objects[f"{PREFIX}deployment-record-{run.id}.json"]
    assert record["status"] == "failed_rolled_back"
    assert record["rollback_available"] is False


async def test_a_failed_migration_is_the_failed_stage_of_the_report(
    bot: BotDriver, slack: FakeSlack, gates: GatesWorld, clock: HookedClock
) -> None:
    gates.bucket(BUCKET)
    clock.on_sleep = lambda seconds: finish_tasks(CLUSTER, 1)

    run = await deploy(bot, slack)

    objects = gates.objects(BUCKET)
    report = objects[f"{PREFIX}deployment-failure-report-{run.id}.json"]
    assert report["failed_stage"] == "migrate"
    assert report["rolled_back"] == []
    assert report["database_backup"] == f"chatops-{run.id}"
    record = objects[f"{PREFIX}deployment-record-{run.id}.json"]
    assert record["migrations_applied"] == 0


async def test_a_missing_bucket_never_holds_up_the_run_and_the_store_says_nothing_was_written(
    bot: BotDriver, slack: FakeSlack, gates: GatesWorld, clock: HookedClock
) -> None:
    run = await deploy(bot, slack)

    assert run.state is DeploymentState.SUCCEEDED
    assert run.records_written == ()
    assert clock.slept.count(2.0) >= 2
    assert clock.slept.count(10.0) >= 2
    assert any(t.startswith("❌ records failed") for t in thread(slack))


async def test_a_record_refused_once_is_written_on_the_retry(
    bot: BotDriver, slack: FakeSlack, gates: GatesWorld, clock: HookedClock
) -> None:
    """The bucket appears while the bot waits to try again."""

    def tasks_end_and_the_bucket_appears(seconds: float) -> None:
        finish_tasks(CLUSTER, 0)
        if seconds == 2.0 and BUCKET not in {b["Name"] for b in gates.s3.list_buckets()["Buckets"]}:
            gates.bucket(BUCKET)

    clock.on_sleep = tasks_end_and_the_bucket_appears

    run = await deploy(bot, slack)

    assert set(run.records_written) == keys(run.id, "deployment-record", "rollback-instructions")
    assert set(gates.objects(BUCKET)) == set(run.records_written)
    assert not any(t.startswith("❌ records failed") for t in thread(slack))


async def test_a_rollback_run_writes_its_own_record_saying_what_it_reverts_and_why(
    bot: BotDriver, slack: FakeSlack, gates: GatesWorld
) -> None:
    gates.bucket(BUCKET)
    deployed = await deploy(bot, slack, "market-svc")

    await bot.command("production market-svc -y bad release", command="/rollback", user="ULEAD1")

    rollback = next(r for r in await bot.runtime.deploy.history(None) if r.id != deployed.id)
    record = gates.objects(BUCKET)[f"{PREFIX}deployment-record-{rollback.id}.json"]
    assert (record["kind"], record["status"]) == ("rollback", "success")
    assert (record["reverts"], record["reason"]) == (deployed.id, "bad release")
    assert gates.objects(BUCKET)[f"{PREFIX}deployment-record-{deployed.id}.json"]["status"] == (
        "success"
    )
