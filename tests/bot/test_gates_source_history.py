"""The memory of the source environment (issue 16): promoting a version that failed or was
rolled back where it is promoted from, in the last 24 hours, warns on the plan card and in a dry
run, and with `refuse_failed_in_source` is refused. Through signed requests, the strict local
Slack, moto and local health servers, on an injected clock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.deploy.views import APPROVE_ACTION
from bot.rollback.views import ROLLBACK_CONFIRM_ACTION
from pipeline.aws import BotoEcs
from pipeline.kernel.config import Config
from store.deploy.models import Deployment, DeploymentState, RunKind
from store.deploy.repository import Deployments
from tests.conftest import STAGING_PATH, BotFactory, config_dict
from tests.driver import BotDriver, plan_cards, run_id_of
from tests.fakes.clock import FakeClock
from tests.fakes.ecs import HeldEcs
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack

HOUR = 3600.0


def broken_in_staging(world: EcsWorld, version: str):
    """Staging's health endpoints answer 503 while staging runs `version` of a service."""

    def status_for(service: str, path: str) -> int:
        broken = path.startswith(STAGING_PATH) and world.version("staging", service) == version
        return 503 if broken else 200

    return status_for


async def staging_run(bot: BotDriver) -> Deployment:
    return (await bot.runtime.deploy.history("staging"))[0]


async def fail_in_staging(
    bot: BotDriver, world: EcsWorld, health: FakeHealth, version: str = "v1.4.0"
) -> Deployment:
    """Deploy `version` of auth-svc to staging, where it fails its health check and is rolled
    back; staging is healthy again afterwards."""
    health.status_for = broken_in_staging(world, version)
    await bot.command(f"staging auth-svc {version}", user="UDEV")
    run = await staging_run(bot)
    assert run.state is DeploymentState.ROLLED_BACK
    health.status_for = lambda service, path: 200
    return run


async def failed_at(bot: BotDriver, run: Deployment) -> str:
    """When the run's first failure was recorded, as the warning shows it (UTC)."""
    events = await Deployments(bot.runtime.store).events(run.id)
    at = next(e.at for e in events if e.status == "failed")
    return f"at {at:%H:%M} UTC ({at:%a})"


def card_text(card: dict[str, Any]) -> str:
    return str(card["blocks"])


def said(slack: FakeSlack) -> str:
    """The last reply through a response_url, checked to be private."""
    reply = slack.responses[-1]
    assert reply["response_type"] == "ephemeral"
    return str(reply["text"])


class TestTheWarning:
    async def test_a_version_that_failed_in_staging_an_hour_ago_warns_and_still_needs_approvals(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        world: EcsWorld,
        health: FakeHealth,
        clock: FakeClock,
    ) -> None:
        failed = await fail_in_staging(bot, world, health)
        when = await failed_at(bot, failed)
        clock.advance(HOUR)

        await bot.command("production auth-svc v1.4.0", user="UDEV")

        card = plan_cards(slack)[-1]
        text = card_text(card)
        assert "*`auth-svc` v1.4.0 failed in `staging`*" in text
        assert when in text
        assert "`auth-svc` failed its health check `/health` after 5 attempts" in text
        assert "503" in text
        assert f"deployment `{failed.id}`" in text
        run = await bot.runtime.runs.get(run_id_of(card))
        assert (run.state, run.required_approvals) == (DeploymentState.AWAITING_APPROVAL, 2)
        assert "approvals 0/2" in text
        assert APPROVE_ACTION in text
        assert world.version("production", "auth-svc") == "v1.2.0"

    async def test_the_warning_stays_on_the_card_once_approved(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        world: EcsWorld,
        health: FakeHealth,
        clock: FakeClock,
    ) -> None:
        await fail_in_staging(bot, world, health)
        clock.advance(HOUR)
        await bot.command("production auth-svc v1.4.0", user="UDEV")
        run_id = run_id_of(plan_cards(slack)[-1])

        await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")

        run = await bot.runtime.runs.get(run_id)
        assert run.state is DeploymentState.AWAITING_APPROVAL
        assert "v1.4.0 failed in `staging`" in str(slack.of("chat.update")[-1]["blocks"])

    async def test_a_failure_25_hours_ago_is_forgotten(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        world: EcsWorld,
        health: FakeHealth,
        clock: FakeClock,
    ) -> None:
        await fail_in_staging(bot, world, health)
        clock.advance(25 * HOUR)

        await bot.command("production auth-svc v1.4.0", user="UDEV")

        text = card_text(plan_cards(slack)[-1])
        assert "`auth-svc` v1.2.0 → *v1.4.0*" in text
        assert "failed in `staging`" not in text
        assert "⚠️" not in text

    async def test_another_version_is_not_warned_of(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        world: EcsWorld,
        health: FakeHealth,
        clock: FakeClock,
    ) -> None:
        await fail_in_staging(bot, world, health)
        clock.advance(HOUR)

        await bot.command("production auth-svc v1.4.1", user="UDEV")

        text = card_text(plan_cards(slack)[-1])
        assert "`auth-svc` v1.2.0 → *v1.4.1*" in text
        assert "failed in `staging`" not in text
        assert "⚠️" not in text

    async def test_the_same_version_deployed_to_staging_again_since_is_not_warned_of(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        world: EcsWorld,
        health: FakeHealth,
        clock: FakeClock,
    ) -> None:
        await fail_in_staging(bot, world, health)
        clock.advance(HOUR)
        await bot.command("staging auth-svc v1.4.0", user="UDEV")
        assert (await staging_run(bot)).state is DeploymentState.SUCCEEDED

        await bot.command("production auth-svc v1.4.0", user="UDEV")

        text = card_text(plan_cards(slack)[-1])
        assert "`auth-svc` v1.2.0 → *v1.4.0*" in text
        assert "failed in `staging`" not in text


class TestRolledBackByHand:
    @pytest.fixture
    def config(self, health: FakeHealth) -> Config:
        """Production shows times in Paris."""
        data = config_dict(health)
        data["environments"]["production"]["schedule"] = {"timezone": "Europe/Paris"}
        return Config.model_validate(data)

    async def test_the_warning_names_who_rolled_it_back_why_and_when_in_the_configured_zone(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        world: EcsWorld,
        clock: FakeClock,
    ) -> None:
        await bot.command("staging auth-svc v1.4.0", user="UDEV")
        clock.advance(HOUR)
        await bot.command(
            "staging auth-svc checkout <!channel> broke", command="/rollback", user="UONCALL"
        )
        rollback = next(r for r in await bot.runtime.deploy.history("staging") if r.is_rollback)
        await bot.click(ROLLBACK_CONFIRM_ACTION, rollback.id, user="UONCALL")
        rollback = await bot.runtime.runs.get(rollback.id)
        assert (rollback.kind, rollback.state) == (RunKind.ROLLBACK, DeploymentState.SUCCEEDED)
        assert world.version("staging", "auth-svc") == "v1.3.0"
        clock.advance(HOUR)

        await bot.command("production auth-svc v1.4.0", user="UDEV")

        text = card_text(plan_cards(slack)[-1])
        assert "*`auth-svc` v1.4.0 was rolled back in `staging`* by <@UONCALL>" in text
        # 10:00 UTC on 22 November 2026 is 11:00 in Paris.
        assert "at 11:00 Europe/Paris (Sun)" in text
        assert "checkout &lt;!channel&gt; broke" in text
        assert "<!channel>" not in text
        assert f"rollback `{rollback.id}`" in text

    async def test_a_deploy_stopped_by_rollback_while_rolling_out_names_who_stopped_it(
        self, make_bot: BotFactory, slack: FakeSlack, world: EcsWorld
    ) -> None:
        ecs = HeldEcs(BotoEcs())
        bot = await make_bot(ecs)
        await bot.command("staging auth-svc v1.4.0", user="UDEV", wait_runs=False)
        await asyncio.wait_for(ecs.holding.wait(), 10)
        await bot.command(
            "staging auth-svc smoke tests red", command="/rollback", user="UONCALL", wait_runs=False
        )
        ecs.release()
        await bot.settle()
        stopped = await staging_run(bot)
        assert stopped.state is DeploymentState.ROLLED_BACK

        await bot.command("production auth-svc v1.4.0", user="UDEV")

        text = card_text(plan_cards(slack)[-1])
        assert "*`auth-svc` v1.4.0 was rolled back in `staging`* by <@UONCALL>" in text
        assert (
            f"deployment `{stopped.id}`: stopped by <@UONCALL> with `/rollback`: smoke tests red"
            in text
        )


class TestRefusal:
    @pytest.fixture
    def config(self, health: FakeHealth) -> Config:
        data = config_dict(health)
        data["environments"]["production"]["refuse_failed_in_source"] = True
        return Config.model_validate(data)

    async def test_a_recent_failure_is_refused_privately_saying_what_when_and_why(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        world: EcsWorld,
        health: FakeHealth,
        clock: FakeClock,
    ) -> None:
        failed = await fail_in_staging(bot, world, health)
        when = await failed_at(bot, failed)
        clock.advance(HOUR)
        cards = len(plan_cards(slack))

        await bot.command("production auth-svc v1.4.0", user="UDEV")

        text = said(slack)
        assert "`production` refuses a version that failed or was rolled back in `staging`" in text
        assert "`auth-svc` v1.4.0 failed in `staging`" in text
        assert when in text
        assert "failed its health check `/health`" in text
        assert "Nothing was planned." in text
        assert len(plan_cards(slack)) == cards
        assert await bot.runtime.deploy.history("production") == []
        assert world.version("production", "auth-svc") == "v1.2.0"

    async def test_a_hotfix_that_skips_staging_gets_through_with_the_warning(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        world: EcsWorld,
        health: FakeHealth,
        clock: FakeClock,
    ) -> None:
        await fail_in_staging(bot, world, health)
        clock.advance(HOUR)

        await bot.command('production auth-svc v1.4.0 --skip-staging "login is down"', user="UDEV")

        [run] = await bot.runtime.deploy.history("production")
        assert run.state is DeploymentState.AWAITING_APPROVAL
        text = card_text(plan_cards(slack)[-1])
        assert "⏩ *Hotfix*: staging skipped · login is down" in text
        assert "*`auth-svc` v1.4.0 failed in `staging`*" in text

    async def test_another_version_is_planned_as_usual(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        world: EcsWorld,
        health: FakeHealth,
        clock: FakeClock,
    ) -> None:
        await fail_in_staging(bot, world, health)
        clock.advance(HOUR)

        await bot.command("production auth-svc v1.4.1", user="UDEV")

        [run] = await bot.runtime.deploy.history("production")
        assert run.state is DeploymentState.AWAITING_APPROVAL
        assert "failed in `staging`" not in card_text(plan_cards(slack)[-1])


class TestDryRun:
    async def test_a_dry_run_shows_the_warning_and_changes_nothing(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        world: EcsWorld,
        health: FakeHealth,
        clock: FakeClock,
    ) -> None:
        failed = await fail_in_staging(bot, world, health)
        clock.advance(HOUR)

        await bot.command("production auth-svc v1.4.0 --dry-run", user="UDEV")

        text = said(slack)
        assert "⚠️ source history: *`auth-svc` v1.4.0 failed in `staging`*" in text
        assert f"deployment `{failed.id}`" in text
        assert "✅ It would post a plan card needing 2 approvals." in text
        assert await bot.runtime.deploy.history("production") == []

    async def test_a_dry_run_without_a_failure_says_the_source_is_clean(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        await bot.command("production auth-svc v1.4.0 --dry-run", user="UDEV")

        assert (
            "✅ source history: nothing planned failed or was rolled back in `staging` "
            "in the last 24 hours" in said(slack)
        )
