"""Pre-flight checks through signed requests, the strict local Slack, moto (ECS, ECR) and local
health servers: each image tag in ECR (its digest on the card), a healthy source environment
when promoting, the version's format, and the checks again just before the run starts."""

from __future__ import annotations

import pytest

from bot.deploy.views import APPROVE_ACTION
from pipeline.kernel.config import Config
from store.deploy.models import DeploymentState
from tests.conftest import SERVICES, STAGING_PATH, config_dict
from tests.driver import BotDriver, plan_cards, run_id_of
from tests.fakes.ecs import put_version
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.gates_world import GatesWorld
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack


@pytest.fixture
def config(health: FakeHealth) -> Config:
    """Both environments look every image tag up in ECR."""
    data = config_dict(health)
    for env in data["environments"].values():
        env["ecr_check"] = True
    return Config.model_validate(data)


@pytest.fixture
def gates(world: EcsWorld) -> GatesWorld:
    """ECR holds every version the estate runs (v1.2.0, v1.3.0) for every service."""
    estate = GatesWorld()
    for service in SERVICES:
        estate.push(f"skillancer/{service}", "v1.2.0", "v1.3.0")
    return estate


def said(slack: FakeSlack) -> str:
    """The last reply the bot sent through a response_url, checked to be private."""
    reply = slack.responses[-1]
    assert reply["response_type"] == "ephemeral"
    return str(reply["text"])


def estate(world: EcsWorld, env: str) -> dict[str, str]:
    return {s: world.task_definition(env, s) for s in SERVICES}


def digest(gates: GatesWorld, service: str, tag: str) -> str:
    found = gates.ecr.describe_images(
        repositoryName=f"skillancer/{service}", imageIds=[{"imageTag": tag}]
    )
    return str(found["imageDetails"][0]["imageDigest"])


async def approve(bot: BotDriver, run_id: str, *approvers: str) -> None:
    for user in approvers or ("UAPPROVER1", "UAPPROVER2"):
        await bot.click(APPROVE_ACTION, run_id, user=user)


class TestImages:
    async def test_a_tag_missing_from_ecr_is_refused_naming_the_service_and_the_check(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld, gates: GatesWorld
    ) -> None:
        gates.push("skillancer/api-gateway", "v1.4.0")
        before = estate(world, "staging")

        await bot.command("staging api-gateway,auth-svc v1.4.0", user="UDEV")

        text = said(slack)
        assert "Pre-flight check `image` failed for `auth-svc`" in text
        assert "ECR has no image `skillancer/auth-svc:v1.4.0`" in text
        assert "Nothing was planned." in text
        assert "api-gateway" not in text.split("You typed")[0]
        assert await bot.runtime.deploy.history(None) == []
        assert plan_cards(slack) == []
        assert estate(world, "staging") == before

    async def test_a_repository_missing_from_ecr_is_refused_naming_it(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld
    ) -> None:
        await bot.command("staging market-svc v1.4.0", user="UDEV")

        assert "ECR has no repository `skillancer/market-svc`" in said(slack)
        assert await bot.runtime.deploy.history(None) == []

    async def test_the_plan_card_shows_each_images_digest(
        self, bot: BotDriver, slack: FakeSlack, gates: GatesWorld
    ) -> None:
        gates.push("skillancer/api-gateway", "v1.4.0")
        gates.push("skillancer/auth-svc", "v1.4.0")

        await bot.command("staging api-gateway,auth-svc v1.4.0", user="UDEV")

        card = str(plan_cards(slack)[-1]["blocks"])
        for service in ("api-gateway", "auth-svc"):
            shown = digest(gates, service, "v1.4.0")[:19]
            assert f"`{service}` v1.3.0 → *v1.4.0* · `{shown}…`" in card
        run = await bot.runtime.runs.get(run_id_of(plan_cards(slack)[-1]))
        assert {t.service: t.image_digest for t in run.targets} == {
            s: digest(gates, s, "v1.4.0") for s in ("api-gateway", "auth-svc")
        }
        assert len({t.image_digest for t in run.targets}) == 2  # each image its own


class TestPromotion:
    async def test_an_unhealthy_source_environment_is_refused_naming_the_service(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        world: EcsWorld,
        gates: GatesWorld,
        health: FakeHealth,
    ) -> None:
        health.status_for = lambda service, path: (
            503 if service == "auth-svc" and path.startswith(STAGING_PATH) else 200
        )
        before = estate(world, "production")

        await bot.command("production api-gateway,auth-svc", user="UDEV")

        text = said(slack)
        assert "Pre-flight check `source health` failed for `auth-svc`" in text
        assert "`staging` is not healthy: `/health` 503" in text
        assert "503" in text
        assert await bot.runtime.deploy.history(None) == []
        assert plan_cards(slack) == []
        assert estate(world, "production") == before

    async def test_a_healthy_source_environment_lets_the_plan_card_through(
        self, bot: BotDriver, slack: FakeSlack, gates: GatesWorld, health: FakeHealth
    ) -> None:
        await bot.command("production auth-svc", user="UDEV")

        card = str(plan_cards(slack)[-1]["blocks"])
        assert "`auth-svc` v1.2.0 → *v1.3.0*" in card
        assert any(path.startswith(STAGING_PATH) for s, path, _ in health.hits if s == "auth-svc")

    async def test_skip_staging_does_not_ask_the_source_and_is_marked_on_the_card(
        self, bot: BotDriver, slack: FakeSlack, gates: GatesWorld, health: FakeHealth
    ) -> None:
        health.status_for = lambda service, path: 503 if path.startswith(STAGING_PATH) else 200
        gates.push("skillancer/auth-svc", "v1.3.1")

        await bot.command('production auth-svc v1.3.1 --skip-staging "login is down"', user="UDEV")

        card = str(plan_cards(slack)[-1]["blocks"])
        assert "⏩ *Hotfix*: staging skipped · login is down" in card
        assert not [h for h in health.hits if h[1].startswith(STAGING_PATH)]

    async def test_a_source_running_no_version_cannot_be_promoted(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld, gates: GatesWorld
    ) -> None:
        put_version(world, "staging", "market-svc", "latest")

        await bot.command("production market-svc", user="UDEV")

        text = said(slack)
        assert "Cannot tell which version `market-svc` runs in `staging`" in text
        assert "Name a version instead." in text
        assert await bot.runtime.deploy.history(None) == []


class TestTheVersion:
    @pytest.mark.parametrize("version", ["1.4.0", "v1.4", "latest", "v1.4.0_rc1"])
    async def test_a_version_in_another_format_is_refused_before_any_check(
        self, bot: BotDriver, slack: FakeSlack, version: str
    ) -> None:
        reply = await bot.command(f"staging api-gateway {version}", user="UDEV")

        body = reply["body"]
        assert body["response_type"] == "ephemeral"
        assert f"`{version}` is not a version" in body["text"]
        assert "`v1.2.3`" in body["text"]
        assert await bot.runtime.deploy.history(None) == []


class TestAgainBeforeTheRun:
    async def test_an_image_deleted_after_the_card_stops_the_run_before_any_ecs_change(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld, gates: GatesWorld
    ) -> None:
        gates.push("skillancer/auth-svc", "v1.4.0")
        await bot.command("production auth-svc v1.4.0", user="UDEV")
        run_id = run_id_of(plan_cards(slack)[-1])
        gates.ecr.batch_delete_image(
            repositoryName="skillancer/auth-svc", imageIds=[{"imageTag": "v1.4.0"}]
        )
        before = estate(world, "production")

        await approve(bot, run_id)

        assert (await bot.runtime.runs.get(run_id)).state is DeploymentState.ROLLED_BACK
        assert estate(world, "production") == before
        card = str(slack.of("chat.update")[-1]["blocks"])
        assert "Pre-flight check `image` failed" in card
        assert "ECR has no image `skillancer/auth-svc:v1.4.0`" in card
        assert "It stopped before any service changed: nothing to roll back." in card
        thread = [
            str(c["text"]) for c in slack.of("chat.postMessage") if c.get("thread_ts") is not None
        ]
        assert "✅ rollback done" not in thread
        assert "• rollback skipped: no service had changed" in thread

    async def test_staging_falling_ill_after_the_card_stops_the_run_before_any_ecs_change(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        world: EcsWorld,
        gates: GatesWorld,
        health: FakeHealth,
    ) -> None:
        await bot.command("production auth-svc", user="UDEV")
        run_id = run_id_of(plan_cards(slack)[-1])
        health.status_for = lambda service, path: 503 if path.startswith(STAGING_PATH) else 200
        before = estate(world, "production")

        await approve(bot, run_id)

        assert (await bot.runtime.runs.get(run_id)).state is DeploymentState.ROLLED_BACK
        assert estate(world, "production") == before
        card = str(slack.of("chat.update")[-1]["blocks"])
        assert "Pre-flight check `source health` failed" in card
        assert "`staging` is not healthy: `/health` 503" in card
        assert "It stopped before any service changed: nothing to roll back." in card
        assert estate(world, "production") == before
