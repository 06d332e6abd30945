"""`/deploy … --dry-run` through signed requests, the strict local Slack, moto (ECS, ECR, RDS,
S3) and local health servers: the plan and every check's result, privately, and nothing changed
anywhere: no ECS, RDS or S3 write, no card, no approval request."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.kernel.config import Config
from tests.conftest import SERVICES, STAGING_PATH, config_dict
from tests.driver import BotDriver
from tests.fakes.ecs import put_version
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.gates_world import GatesWorld
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack

LIVE_DB = "skillancer-prod-db"
BUCKET = "skillancer-deploy-records"


@pytest.fixture
def gates(world: EcsWorld) -> GatesWorld:
    """ECR holds v1.2.0 and v1.3.0 of every service; production has a database and a bucket."""
    estate = GatesWorld()
    for service in SERVICES:
        estate.push(f"skillancer/{service}", "v1.2.0", "v1.3.0")
    estate.database(LIVE_DB)
    estate.bucket(BUCKET)
    return estate


@pytest.fixture
def config(health: FakeHealth, gates: GatesWorld) -> Config:
    """Every gate that writes is on: a backup and a migration, records, windows, ECR."""
    data = config_dict(health)
    network = {"subnets": [gates.subnet], "security_groups": [gates.security_group]}
    for env in data["environments"].values():
        env["network"] = network
        env["ecr_check"] = True
    prod = data["environments"]["production"]
    prod["database"] = {"instance": LIVE_DB}
    prod["records"] = {"bucket": BUCKET}
    prod["schedule"] = {"windows": ["tue-wed 14:00-18:00", "thu 14:00-16:00"]}
    data["services"]["auth-svc"]["migration"] = {"command": ["pnpm", "prisma", "migrate"]}
    return Config.model_validate(data)


def everything(world: EcsWorld, gates: GatesWorld) -> dict[str, Any]:
    """What a deploy could change in AWS: ECS services, task definitions and tasks, RDS
    instances and snapshots, and the records bucket."""
    ecs = world.client
    services = {
        (env, s): {
            k: v
            for k, v in ecs.describe_services(cluster=world.cluster(env), services=[s])["services"][
                0
            ].items()
            if k in ("taskDefinition", "desiredCount", "deployments")
        }
        for env in ("staging", "production")
        for s in SERVICES
    }
    return {
        "services": services,
        "task definitions": sorted(ecs.list_task_definitions()["taskDefinitionArns"]),
        "tasks": {
            env: ecs.list_tasks(cluster=world.cluster(env))["taskArns"]
            for env in ("staging", "production")
        },
        "instances": sorted(
            i["DBInstanceIdentifier"] for i in gates.rds.describe_db_instances()["DBInstances"]
        ),
        "snapshots": sorted(
            s["DBSnapshotIdentifier"] for s in gates.rds.describe_db_snapshots()["DBSnapshots"]
        ),
        "objects": sorted(gates.objects(BUCKET)),
    }


def said(slack: FakeSlack) -> str:
    """The last reply the bot sent through a response_url, checked to be private."""
    reply = slack.responses[-1]
    assert reply["response_type"] == "ephemeral"
    return str(reply["text"])


async def test_a_dry_run_changes_nothing_in_aws_and_asks_nobody(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld, gates: GatesWorld
) -> None:
    before = everything(world, gates)

    await bot.command('production all --dry-run --break-glass "rehearsal"', user="UDEV")

    assert everything(world, gates) == before
    assert slack.of("chat.postMessage") == []
    assert slack.of("chat.update") == []
    assert await bot.runtime.deploy.history(None) == []
    assert bot.runtime.timers.armed == {}
    assert "It would post a plan card needing 3 approvals." in said(slack)


async def test_a_dry_run_shows_the_plan_and_every_checks_result(
    bot: BotDriver, slack: FakeSlack, gates: GatesWorld
) -> None:
    await bot.command("production auth-svc,market-svc --dry-run", user="UDEV")

    text = said(slack)
    assert text.startswith("🧪 *Dry run* of `/deploy production auth-svc,market-svc`")
    assert "• `auth-svc` v1.2.0 → *v1.3.0*" in text
    assert "• `market-svc` v1.2.0 → *v1.3.0*" in text
    assert "✅ lock: not locked" in text
    assert "❌ window: outside the deploy windows" in text
    for service in ("auth-svc", "market-svc"):
        assert f"✅ image: `{service}` `" in text
        assert f"✅ source health: `{service}` `staging` answered `/health` 200" in text
    assert "❌ It would be refused: 1 check failed." in text
    assert "Nothing was changed: no ECS, RDS or S3 write and no approval request." in text


async def test_a_dry_run_says_which_services_are_already_on_the_version(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld, gates: GatesWorld
) -> None:
    put_version(world, "production", "market-svc", "v1.3.0")

    await bot.command("production auth-svc,market-svc --dry-run", user="UDEV")

    text = said(slack)
    assert "• `auth-svc` v1.2.0 → *v1.3.0*" in text
    assert "• `market-svc` already on v1.3.0: skipped" in text
    assert "market-svc` `staging`" not in text


async def test_a_dry_run_names_each_service_whose_image_is_missing(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld, gates: GatesWorld
) -> None:
    before = everything(world, gates)

    await bot.command(
        'production auth-svc,market-svc v1.4.0 --dry-run --skip-staging "login is down"',
        user="UDEV",
    )

    text = said(slack)
    assert "❌ image: `auth-svc` ECR has no image `skillancer/auth-svc:v1.4.0`." in text
    assert "❌ image: `market-svc` ECR has no image `skillancer/market-svc:v1.4.0`." in text
    assert "❌ It would be refused: 3 checks failed." in text
    assert everything(world, gates) == before


async def test_a_hotfix_dry_run_warns_that_staging_is_skipped(
    bot: BotDriver, slack: FakeSlack, gates: GatesWorld, health: FakeHealth
) -> None:
    await bot.command(
        'production auth-svc v1.3.0 --dry-run --skip-staging "login is down"', user="UDEV"
    )

    assert "⚠️ staging: skipped (hotfix): login is down" in said(slack)
    assert not [h for h in health.hits if h[1].startswith(STAGING_PATH)]


async def test_a_dry_run_names_the_service_whose_source_is_unhealthy(
    bot: BotDriver, slack: FakeSlack, gates: GatesWorld, health: FakeHealth
) -> None:
    health.status_for = lambda service, path: (
        503 if service == "market-svc" and path.startswith(STAGING_PATH) else 200
    )

    await bot.command("production auth-svc,market-svc --dry-run", user="UDEV")

    text = said(slack)
    assert "❌ source health: `market-svc` `staging` is not healthy: `/health` 503" in (text)
    assert "✅ source health: `auth-svc` `staging` answered `/health` 200" in text


async def test_the_source_health_line_claims_no_version_it_did_not_compare(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld, gates: GatesWorld
) -> None:
    """Issue 16: staging ran v1.0.0 while the line said "healthy on v1.3.0"."""
    put_version(world, "staging", "auth-svc", "v1.0.0")

    await bot.command("production auth-svc v1.3.0 --dry-run", user="UDEV")

    [source] = [t for t in said(slack).splitlines() if t.startswith("✅ source health:")]
    assert source.startswith("✅ source health: `auth-svc` `staging` answered `/health` 200")
    assert "v1." not in source


async def test_a_dry_run_is_audited_as_changing_nothing(bot: BotDriver, gates: GatesWorld) -> None:
    await bot.command("production auth-svc --dry-run", user="UDEV")

    [entry] = await bot.runtime.audit.recent()
    assert (entry.actor, entry.action, entry.outcome) == (
        "UDEV",
        "/deploy production auth-svc --dry-run",
        "dry run: nothing changed",
    )


async def test_a_dry_run_of_services_already_on_the_version_says_there_is_nothing_to_do(
    bot: BotDriver, slack: FakeSlack, gates: GatesWorld
) -> None:
    await bot.command("staging auth-svc v1.3.0 --dry-run", user="UDEV")

    assert "Nothing to deploy: every service is already on its target version" in said(slack)
