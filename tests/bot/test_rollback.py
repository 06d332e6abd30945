"""`/rollback` through signed requests, the strict local Slack, moto and local health servers:
the command, its confirmation, the rollback run and its card, the rollback window, stopping a
running deploy, and every bad input."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.deploy.views import APPROVE_ACTION, REJECT_ACTION, WINDOW_ROLLBACK_ACTION
from bot.incident.views import SUSPECT_ROLLBACK_ACTIONS
from bot.rollback.views import ROLLBACK_CANCEL_ACTION, ROLLBACK_CONFIRM_ACTION
from bot.settings import Settings
from pipeline.aws import BotoEcs
from pipeline.kernel.config import Config
from store.deploy.models import DeploymentState, RunKind, TargetStatus
from tests.conftest import BotFactory, config_dict
from tests.driver import BotDriver, plan_cards, raw_user_ids, run_id_of, thread
from tests.fakes.clock import FakeClock
from tests.fakes.ecs import HeldEcs, put_version
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack

ONCALL = "UONCALL"
MINUTE = 60.0


@pytest.fixture
def config(health: FakeHealth) -> Config:
    data = config_dict(health)
    data["environments"]["production"]["rollbackers"] = [ONCALL, "S0LEADS"]
    return Config.model_validate(data)


async def deploy_production(bot: BotDriver, slack: FakeSlack, services: str) -> str:
    """Request and approve a production deploy (staging's v1.3.0); its id once it ran."""
    await bot.command(f"production {services}", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[-1])
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2")
    assert (await bot.runtime.runs.get(run_id)).state is DeploymentState.SUCCEEDED
    return run_id


async def rollback(bot: BotDriver, text: str, *, user: str = ONCALL) -> dict[str, Any]:
    return await bot.command(text, command="/rollback", user=user)


def said(slack: FakeSlack) -> dict[str, Any]:
    """The last private reply the bot sent through a response_url."""
    return slack.responses[-1]


async def card_blocks(bot: BotDriver, slack: FakeSlack, run_id: str) -> list[dict[str, Any]]:
    """A run's card as Slack shows it now (after every update)."""
    run = await bot.runtime.runs.get(run_id)
    assert run.channel_id is not None
    [card] = [m for m in slack.workspace.channel(run.channel_id).messages if m.ts == run.message_ts]
    return list(card.blocks)


async def card_of(bot: BotDriver, slack: FakeSlack, run_id: str) -> str:
    """A run's card as Slack shows it now, as searchable text."""
    return str(await card_blocks(bot, slack, run_id))


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in message.get("blocks") or [] if b["type"] == "actions" for e in b["elements"]]


async def latest_rollback(bot: BotDriver) -> Any:
    runs = [r for r in await bot.runtime.deploy.history(None) if r.kind is RunKind.ROLLBACK]
    return runs[0] if runs else None


class TestTheCommand:
    async def test_a_rollback_asks_first_then_takes_the_service_back_on_the_requesters_click(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld
    ) -> None:
        before = world.task_definition("production", "api-gateway")
        deploy_id = await deploy_production(bot, slack, "api-gateway")

        await rollback(bot, "production api-gateway login errors spiking")
        question = said(slack)
        pending = await latest_rollback(bot)
        await bot.click(ROLLBACK_CONFIRM_ACTION, pending.id, user=ONCALL)

        assert question["response_type"] == "ephemeral"
        assert "`api-gateway` v1.3.0 → *v1.2.0*" in str(question["blocks"])
        assert [b["action_id"] for b in buttons(question)] == [
            ROLLBACK_CONFIRM_ACTION,
            ROLLBACK_CANCEL_ACTION,
        ]
        assert world.task_definition("production", "api-gateway") == before
        assert world.version("production", "api-gateway") == "v1.2.0"
        run = await bot.runtime.runs.get(pending.id)
        assert (run.kind, run.state, run.reverts) == (
            RunKind.ROLLBACK,
            DeploymentState.SUCCEEDED,
            deploy_id,
        )
        assert run.reason == "login errors spiking"
        assert "✅ Rollback complete" in await card_of(bot, slack, run.id)
        notice = next(c for c in slack.of("chat.postMessage") if "Deployment Rollback" in c["text"])
        assert "*From Version*: v1.3.0\n*To Version*: v1.2.0" in notice["text"]
        assert "*Reason*: login errors spiking" in notice["text"]
        assert "thread_ts" not in notice
        assert "Rolled back by <@UONCALL>" in await card_of(bot, slack, deploy_id)

    async def test_dash_y_anywhere_skips_the_question(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld
    ) -> None:
        await deploy_production(bot, slack, "api-gateway")

        await rollback(bot, "-y production api-gateway")

        run = await latest_rollback(bot)
        assert run.state is DeploymentState.SUCCEEDED
        assert run.reason is None
        assert world.version("production", "api-gateway") == "v1.2.0"
        assert not any(
            b.get("action_id") == ROLLBACK_CONFIRM_ACTION
            for r in slack.responses
            for b in buttons(r)
        )

    async def test_one_service_taken_back_says_so_and_leaves_the_others_inside_the_window(
        self, bot: BotDriver, slack: FakeSlack, clock: FakeClock
    ) -> None:
        """Issue 16: the rollback window is per service, so a partial rollback keeps it open."""
        deploy_id = await deploy_production(bot, slack, "api-gateway,auth-svc")
        clock.advance(10 * MINUTE)

        await rollback(bot, "-y production auth-svc login errors")

        run = await latest_rollback(bot)
        card = await card_of(bot, slack, deploy_id)
        assert "↩️ Production deployment partly rolled back" in card
        assert "↩️ `auth-svc` v1.2.0 → *v1.3.0* · rolled back" in card
        assert "✅ `api-gateway` v1.2.0 → *v1.3.0*" in card
        assert "`auth-svc` rolled back by <@UONCALL>" in card
        assert f"(rollback `{run.id}`): login errors" in card
        assert "successful" not in card
        assert "Rollback available until 10:00 UTC* for `api-gateway`" in card
        assert "window closed" not in card
        [button] = buttons({"blocks": await card_blocks(bot, slack, deploy_id)})
        assert button["action_id"] == WINDOW_ROLLBACK_ACTION
        assert "This takes 1 service in production back" in button["confirm"]["text"]["text"]

    async def test_all_takes_back_every_service_the_last_deploy_changed(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld
    ) -> None:
        await deploy_production(bot, slack, "api-gateway,auth-svc")

        await rollback(bot, "production all -y bad release")

        run = await latest_rollback(bot)
        assert sorted(t.service for t in run.active_targets) == ["api-gateway", "auth-svc"]
        assert world.version("production", "api-gateway") == "v1.2.0"
        assert world.version("production", "auth-svc") == "v1.2.0"
        assert world.version("production", "market-svc") == "v1.2.0"

    async def test_a_named_version_goes_to_the_newest_task_definition_that_ran_it(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld
    ) -> None:
        first = world.task_definition("production", "auth-svc")
        await deploy_production(bot, slack, "auth-svc")
        await bot.command("production auth-svc v1.4.0", user="UDEV")
        second = run_id_of(plan_cards(slack)[-1])
        await bot.click(APPROVE_ACTION, second, user="UAPPROVER1")
        await bot.click(APPROVE_ACTION, second, user="UAPPROVER2")
        assert world.version("production", "auth-svc") == "v1.4.0"

        await rollback(bot, "production auth-svc v1.2.0 -y")

        assert world.task_definition("production", "auth-svc") == first
        run = await latest_rollback(bot)
        assert [(t.current_version, t.target_version) for t in run.active_targets] == [
            ("v1.4.0", "v1.2.0")
        ]

    async def test_cancel_changes_nothing_and_only_the_requesters_click_counts(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld
    ) -> None:
        await deploy_production(bot, slack, "api-gateway")
        await rollback(bot, "production api-gateway")
        pending = await latest_rollback(bot)

        await bot.click(ROLLBACK_CONFIRM_ACTION, pending.id, user="ULEAD1")
        refused = said(slack)["text"]
        await bot.click(ROLLBACK_CANCEL_ACTION, pending.id, user=ONCALL)

        assert "Only <@UONCALL> can answer this question" in refused
        assert (await bot.runtime.runs.get(pending.id)).state is DeploymentState.CANCELLED
        assert said(slack)["replace_original"] is True
        assert world.version("production", "api-gateway") == "v1.3.0"

    async def test_history_shows_the_rollback_beside_the_deploy_it_reverted(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        deploy_id = await deploy_production(bot, slack, "api-gateway")
        await rollback(bot, "production api-gateway -y 5xx after release")
        run = await latest_rollback(bot)

        reply = await bot.command("history production", user="UDEV")

        text = reply["body"]["text"]
        assert f"↩️ rollback `{run.id}` of `{deploy_id}` production" in text
        assert "rolled back by <@UONCALL>" in text
        assert "5xx after release" in text


class TestTheWindow:
    async def test_the_success_message_and_card_offer_the_rollback_window(
        self, bot: BotDriver, slack: FakeSlack, clock: FakeClock
    ) -> None:
        deploy_id = await deploy_production(bot, slack, "api-gateway")

        card = await card_of(bot, slack, deploy_id)
        assert any("Rollback available for 60 minutes" in t for t in thread(slack))
        assert "Rollback available until 10:00 UTC" in card
        assert WINDOW_ROLLBACK_ACTION in card
        record = (await bot.command(f"status {deploy_id} --json", user="UDEV"))["body"]["text"]
        assert '"rollback_available": true' in record
        assert '"rollback_window_minutes": 60' in record

    async def test_a_second_service_inside_the_window_goes_back_without_approvals(
        self, bot: BotDriver, slack: FakeSlack, clock: FakeClock, world: EcsWorld
    ) -> None:
        deploy_id = await deploy_production(bot, slack, "api-gateway,auth-svc")
        await rollback(bot, "-y production auth-svc")
        cards_before = len(plan_cards(slack))
        clock.advance(10 * MINUTE)

        await rollback(bot, "-y production api-gateway")

        second = await latest_rollback(bot)
        assert (second.required_approvals, second.state) == (0, DeploymentState.SUCCEEDED)
        assert second.reverts == deploy_id
        assert world.version("production", "api-gateway") == "v1.2.0"
        assert "approvals" not in str(plan_cards(slack)[cards_before:])
        assert (await bot.runtime.runs.get(deploy_id)).reverted_by == second.id

    async def test_the_cards_button_after_a_partial_rollback_takes_back_only_the_rest(
        self, bot: BotDriver, slack: FakeSlack, clock: FakeClock, world: EcsWorld
    ) -> None:
        deploy_id = await deploy_production(bot, slack, "api-gateway,auth-svc")
        await rollback(bot, "-y production auth-svc")
        first = await latest_rollback(bot)
        clock.advance(MINUTE)

        await bot.click(WINDOW_ROLLBACK_ACTION, deploy_id, user=ONCALL)

        second = await latest_rollback(bot)
        assert second.id != first.id
        assert [t.service for t in second.active_targets] == ["api-gateway"]
        assert world.version("production", "api-gateway") == "v1.2.0"
        card = await card_of(bot, slack, deploy_id)
        assert "↩️ Production deployment rolled back" in card
        assert "`auth-svc` rolled back by <@UONCALL>" in card
        assert "`api-gateway` rolled back by <@UONCALL>" in card
        assert WINDOW_ROLLBACK_ACTION not in card

    async def test_a_rolled_back_deploy_never_says_successful_nor_speaks_of_its_window(
        self, bot: BotDriver, slack: FakeSlack, clock: FakeClock
    ) -> None:
        deploy_id = await deploy_production(bot, slack, "api-gateway")
        await rollback(bot, "-y production api-gateway 5xx after release")
        rolled_back = await card_of(bot, slack, deploy_id)
        clock.advance(61 * MINUTE)

        await bot.runtime.timers.run_due()
        await bot.settle()

        card = await card_of(bot, slack, deploy_id)
        for shown in (rolled_back, card):
            assert "↩️ Production deployment rolled back" in shown
            assert "Rolled back by <@UONCALL>" in shown
            assert "successful" not in shown
            assert "Rollback available" not in shown
            assert "window" not in shown
        deploy = await bot.runtime.runs.get(deploy_id)
        update = [u for u in slack.of("chat.update") if u["ts"] == deploy.message_ts][-1]
        assert update["text"] == "↩️ Production deployment rolled back"

    async def test_a_window_under_a_minute_is_said_in_seconds(
        self,
        settings: Settings,
        health: FakeHealth,
        clock: FakeClock,
        slack: FakeSlack,
        world: EcsWorld,
    ) -> None:
        data = config_dict(health)
        data["environments"]["production"]["rollback_window"] = "30s"
        bot = BotDriver(
            settings=settings,
            config=Config.model_validate(data),
            clock=clock,
            ecs=BotoEcs(),
            slack=slack,
        )
        await bot.start()
        try:
            await deploy_production(bot, slack, "api-gateway")
        finally:
            await bot.stop()

        said = thread(slack)
        assert "Rollback available for 30 seconds" in said[-1]
        assert not any("0 minutes" in t or "(s)" in t for t in said)

    async def test_the_window_button_rolls_back_inside_the_window(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld
    ) -> None:
        deploy_id = await deploy_production(bot, slack, "api-gateway")

        await bot.click(WINDOW_ROLLBACK_ACTION, deploy_id, user=ONCALL)

        assert world.version("production", "api-gateway") == "v1.2.0"
        deploy = await bot.runtime.runs.get(deploy_id)
        assert deploy.reverted_by is not None
        assert WINDOW_ROLLBACK_ACTION not in await card_of(bot, slack, deploy_id)
        record = (await bot.command(f"status {deploy_id} --json", user="UDEV"))["body"]["text"]
        assert '"rollback_available": false' in record

    async def test_the_window_closes_on_time_across_a_restart_and_its_button_then_refuses(
        self, bot: BotDriver, slack: FakeSlack, clock: FakeClock, world: EcsWorld
    ) -> None:
        deploy_id = await deploy_production(bot, slack, "api-gateway")
        await bot.restart()

        clock.advance(61 * MINUTE)
        fired = await bot.runtime.timers.run_due()
        await bot.click(WINDOW_ROLLBACK_ACTION, deploy_id, user=ONCALL)

        assert f"window:{deploy_id}" in fired
        card = await card_of(bot, slack, deploy_id)
        assert "The rollback window closed at 10:00 UTC" in card
        assert WINDOW_ROLLBACK_ACTION not in card
        assert "rollback window of deployment" in said(slack)["text"]
        assert world.version("production", "api-gateway") == "v1.3.0"
        record = (await bot.command(f"status {deploy_id} --json", user="UDEV"))["body"]["text"]
        assert '"rollback_available": false' in record

    async def test_after_the_window_a_rollback_is_a_plan_card_that_needs_approvals(
        self, bot: BotDriver, slack: FakeSlack, clock: FakeClock, world: EcsWorld
    ) -> None:
        await deploy_production(bot, slack, "api-gateway")
        clock.advance(61 * MINUTE)
        await bot.runtime.timers.run_due()

        await rollback(bot, "production api-gateway -y too slow")
        card = plan_cards(slack)[-1]
        run_id = run_id_of(card)
        pending = await bot.runtime.runs.get(run_id)
        await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
        await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2")

        assert pending.kind is RunKind.ROLLBACK
        assert (pending.state, pending.required_approvals) == (DeploymentState.AWAITING_APPROVAL, 2)
        assert "approvals 0/2" in str(card["blocks"])
        assert world.version("production", "api-gateway") == "v1.2.0"

    async def test_a_rejected_rollback_card_names_who_rejected_it(
        self, bot: BotDriver, slack: FakeSlack, clock: FakeClock, world: EcsWorld
    ) -> None:
        await deploy_production(bot, slack, "api-gateway")
        clock.advance(61 * MINUTE)
        await bot.runtime.timers.run_due()
        await rollback(bot, "production api-gateway -y too slow")
        run_id = run_id_of(plan_cards(slack)[-1])

        await bot.click(REJECT_ACTION, run_id, user="UAPPROVER1")

        card = await card_of(bot, slack, run_id)
        assert "🛑 Rejected by <@UAPPROVER1>. Nothing was rolled back." in card
        assert slack.of("chat.update")[-1]["text"].startswith("🛑 Rejected by <@UAPPROVER1>")
        assert world.version("production", "api-gateway") == "v1.3.0"


class TestRunningDeploys:
    async def test_a_rollback_of_a_service_being_deployed_stops_that_deploy_and_rolls_it_back(
        self, make_bot: BotFactory, slack: FakeSlack, world: EcsWorld
    ) -> None:
        ecs = HeldEcs(BotoEcs())
        bot = await make_bot(ecs)
        await bot.command("production api-gateway,auth-svc", user="UDEV")
        deploy_id = run_id_of(plan_cards(slack)[-1])
        await bot.click(APPROVE_ACTION, deploy_id, user="UAPPROVER1")
        await bot.click(APPROVE_ACTION, deploy_id, user="UAPPROVER2", wait_runs=False)
        await asyncio.wait_for(ecs.holding.wait(), 10)

        await bot.command(
            "production api-gateway stop it", command="/rollback", user=ONCALL, wait_runs=False
        )
        stopped = said(slack)["text"]
        await bot.command(
            "production api-gateway", command="/rollback", user=ONCALL, wait_runs=False
        )
        again = said(slack)["text"]
        ecs.release()
        await bot.settle()

        assert f"Deployment `{deploy_id}` was rolling out" in stopped
        assert f"Deployment `{deploy_id}` is already rolling back in `production`" in again
        run = await bot.runtime.runs.get(deploy_id)
        assert run.state is DeploymentState.ROLLED_BACK
        assert run.error == "stopped by UONCALL with `/rollback`: stop it"
        card = await card_of(bot, slack, deploy_id)
        assert "Reason: stopped by <@UONCALL> with `/rollback`: stop it" in card
        assert "• rollback requested: stopped by <@UONCALL> with `/rollback`: stop it" in (
            thread(slack)
        )
        assert raw_user_ids([card, *thread(slack)]) == []
        assert world.version("production", "api-gateway") == "v1.2.0"
        assert world.version("production", "auth-svc") == "v1.2.0"
        assert await latest_rollback(bot) is None

    async def test_two_rollbacks_of_the_same_service_at_once_run_once(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld
    ) -> None:
        await deploy_production(bot, slack, "api-gateway")
        revisions_before = len(
            world.client.list_task_definitions(familyPrefix="production-api-gateway")[
                "taskDefinitionArns"
            ]
        )

        await asyncio.gather(
            bot.command("production api-gateway -y", command="/rollback", user=ONCALL),
            bot.command("production api-gateway -y", command="/rollback", user="ULEAD1"),
        )

        runs = [r for r in await bot.runtime.deploy.history(None) if r.is_rollback]
        started = [r for r in runs if r.state is DeploymentState.SUCCEEDED]
        assert len(started) == 1
        assert world.version("production", "api-gateway") == "v1.2.0"
        revisions_after = len(
            world.client.list_task_definitions(familyPrefix="production-api-gateway")[
                "taskDefinitionArns"
            ]
        )
        assert revisions_after == revisions_before


class TestFailure:
    async def test_a_rollback_whose_health_fails_ends_loudly_with_the_command_to_run(
        self, bot: BotDriver, slack: FakeSlack, health: FakeHealth, world: EcsWorld
    ) -> None:
        await deploy_production(bot, slack, "api-gateway")
        previous = world.client.describe_task_definition(
            taskDefinition=world.task_definition("production", "api-gateway")
        )
        health.status_for = lambda service, path: 503

        await rollback(bot, "production api-gateway -y")

        run = await latest_rollback(bot)
        assert run.state is DeploymentState.ROLLBACK_FAILED
        assert [t.status for t in run.active_targets] == [TargetStatus.ROLLBACK_FAILED]
        loud = next(c for c in slack.of("chat.postMessage") if c.get("reply_broadcast"))
        # Issue 16: a failure also names who asked for the run.
        assert loud["text"].startswith(f"<!channel> <@{run.requested_by}> 🚨 Rollback FAILED")
        target_td = run.active_targets[0].new_task_def
        assert f"--task-definition {target_td}" in loud["text"]
        assert previous is not None


class TestBadInput:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("prod api-gateway", "No environment is called `prod`"),
            ("production web", "No service is called `web`"),
            ("production", "Say which services to roll back"),
            ("production api-gateway v1.2", "`v1.2` is not a version"),
        ],
    )
    async def test_unreadable_text_is_refused_privately_naming_the_choices(
        self, bot: BotDriver, slack: FakeSlack, text: str, expected: str
    ) -> None:
        reply = await rollback(bot, text)

        assert reply["body"]["response_type"] == "ephemeral"
        assert expected in reply["body"]["text"]
        assert slack.of("chat.postMessage") == []
        assert await bot.runtime.deploy.history(None) == []

    async def test_a_version_that_never_ran_there_is_refused_naming_those_that_did(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        await deploy_production(bot, slack, "api-gateway")

        await rollback(bot, "production api-gateway v0.9.0")

        text = said(slack)["text"]
        assert "`api-gateway` never ran `v0.9.0` in `production`" in text
        assert "`v1.3.0`, `v1.2.0`" in text
        assert await latest_rollback(bot) is None

    async def test_a_service_with_no_previous_version_is_refused(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        await rollback(bot, "production market-svc")

        assert "`market-svc` has no previous version in `production`" in said(slack)["text"]
        assert await bot.runtime.deploy.history(None) == []

    async def test_all_in_an_environment_with_no_deploys_is_refused(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        await rollback(bot, "production all")

        assert "Nothing to roll back in `production`" in said(slack)["text"]

    async def test_someone_who_may_not_roll_back_is_refused_and_audited(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld
    ) -> None:
        await deploy_production(bot, slack, "api-gateway")

        reply = await rollback(bot, "production api-gateway -y", user="UINTRUDER")

        assert "Only the rollbackers of `production`" in reply["body"]["text"]
        assert "<@UONCALL>, <!subteam^S0LEADS>" in reply["body"]["text"]
        assert world.version("production", "api-gateway") == "v1.3.0"
        entry = (await bot.runtime.audit.recent())[0]
        assert (entry.actor, entry.outcome[:9]) == ("UINTRUDER", "refused: ")

    async def test_a_stale_confirmation_is_refused_and_changes_nothing(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld
    ) -> None:
        await deploy_production(bot, slack, "api-gateway")
        await rollback(bot, "production api-gateway")
        pending = await latest_rollback(bot)
        put_version(world, "production", "api-gateway", "v1.3.1")

        await bot.click(ROLLBACK_CONFIRM_ACTION, pending.id, user=ONCALL)

        assert "`api-gateway` changed since you asked (it now runs v1.3.1)" in said(slack)["text"]
        assert (await bot.runtime.runs.get(pending.id)).state is DeploymentState.CANCELLED
        assert world.version("production", "api-gateway") == "v1.3.1"

    async def test_an_expired_question_is_refused(
        self, bot: BotDriver, slack: FakeSlack, clock: FakeClock, world: EcsWorld
    ) -> None:
        await deploy_production(bot, slack, "api-gateway")
        await rollback(bot, "production api-gateway")
        pending = await latest_rollback(bot)
        clock.advance(11 * MINUTE)

        await bot.click(ROLLBACK_CONFIRM_ACTION, pending.id, user=ONCALL)

        assert "This question is stale" in said(slack)["text"]
        assert world.version("production", "api-gateway") == "v1.3.0"


class TestFromTheWarRoom:
    async def test_a_suspect_deploy_is_rolled_back_from_the_war_room_and_kept_in_the_timeline(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld
    ) -> None:
        deploy_id = await deploy_production(bot, slack, "api-gateway")
        await bot.command("p1 api-gateway errors", command="/incident", user=ONCALL, channel="CGEN")
        (incident,) = await bot.runtime.incident.list_open()
        alert = next(
            c
            for c in slack.of("chat.postMessage")
            if c["channel"] == incident.channel_id and "INCIDENT" in c["text"]
        )
        [suspect] = [b for b in buttons(alert) if SUSPECT_ROLLBACK_ACTIONS.match(b["action_id"])]

        await bot.click(
            suspect["action_id"], suspect["value"], user="UDEV", channel=incident.channel_id
        )
        refused = said(slack)["text"]
        await bot.click(
            suspect["action_id"], suspect["value"], user=ONCALL, channel=incident.channel_id
        )
        await bot.command(
            "resolve rolled back", command="/incident", user=ONCALL, channel=incident.channel_id
        )

        assert suspect["text"]["text"] == f"Roll back {deploy_id}"
        assert "confirm" in suspect
        assert "Only the rollbackers of `production`" in refused
        assert world.version("production", "api-gateway") == "v1.2.0"
        run = await latest_rollback(bot)
        assert (run.channel_id, run.state) == (incident.channel_id, DeploymentState.SUCCEEDED)
        room = [
            c["text"] for c in slack.of("chat.postMessage") if c["channel"] == incident.channel_id
        ]
        assert any("Deployment Rollback" in t for t in room)
        postmortem = next(t for t in room if t.startswith("📝"))
        assert f"Rollback by <@UONCALL>: rollback {run.id} of deployment {deploy_id} requested" in (
            postmortem
        )
        assert f"Rollback: rollback {run.id} succeeded" in postmortem

    async def test_each_of_two_suspects_has_its_own_button_and_rolls_back_only_its_deploy(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld
    ) -> None:
        gateway = await deploy_production(bot, slack, "api-gateway")
        auth = await deploy_production(bot, slack, "auth-svc")
        await bot.command("p1 logins failing", command="/incident", user=ONCALL, channel="CGEN")
        (incident,) = await bot.runtime.incident.list_open()
        alert = next(
            c
            for c in slack.of("chat.postMessage")
            if c["channel"] == incident.channel_id and "INCIDENT" in c["text"]
        )
        suspects = {
            b["text"]["text"]: b
            for b in buttons(alert)
            if SUSPECT_ROLLBACK_ACTIONS.match(b["action_id"])
        }

        chosen = suspects[f"Roll back {gateway}"]
        await bot.click(
            chosen["action_id"], chosen["value"], user=ONCALL, channel=incident.channel_id
        )

        assert sorted(suspects) == sorted([f"Roll back {gateway}", f"Roll back {auth}"])
        assert len({b["action_id"] for b in suspects.values()}) == 2
        assert world.version("production", "api-gateway") == "v1.2.0"
        assert world.version("production", "auth-svc") == "v1.3.0"
        run = await latest_rollback(bot)
        assert (run.reverts, run.state) == (gateway, DeploymentState.SUCCEEDED)


class TestRestart:
    async def test_a_rollback_stopped_mid_run_finishes_after_a_restart_without_new_revisions(
        self, make_bot: BotFactory, slack: FakeSlack, world: EcsWorld
    ) -> None:
        bot = await make_bot(BotoEcs())
        await deploy_production(bot, slack, "api-gateway")
        await bot.stop()
        revisions = world.client.list_task_definitions(familyPrefix="production-api-gateway")
        ecs = HeldEcs(BotoEcs())
        bot = await make_bot(ecs)

        await bot.command(
            "production api-gateway -y", command="/rollback", user=ONCALL, wait_runs=False
        )
        await asyncio.wait_for(ecs.holding.wait(), 10)
        run = await latest_rollback(bot)
        await bot.stop()
        ecs.release()
        await bot.start()
        await bot.settle()

        done = await bot.runtime.runs.get(run.id)
        assert done.state is DeploymentState.SUCCEEDED
        assert world.version("production", "api-gateway") == "v1.2.0"
        after = world.client.list_task_definitions(familyPrefix="production-api-gateway")
        assert after["taskDefinitionArns"] == revisions["taskDefinitionArns"]
        assert "✅ Rollback complete" in await card_of(bot, slack, run.id)
