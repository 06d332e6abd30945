"""Endings someone must know about reach the channel, not only the card (issue 16): an
automatic rollback, a rejection, a failure, mentioning who asked; an expiry tells the requester."""

from __future__ import annotations

from typing import Any

from bot.deploy.views import APPROVE_ACTION, REJECT_ACTION
from store.deploy.models import DeploymentState
from tests.driver import BotDriver, plan_cards, run_id_of, thread
from tests.fakes.clock import FakeClock
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack

TWO_HOURS_S = 2 * 60 * 60


def broadcasts(slack: FakeSlack) -> list[dict[str, Any]]:
    """Thread replies also shown in the channel."""
    return [
        c
        for c in slack.of("chat.postMessage")
        if "thread_ts" in c and c.get("reply_broadcast") in (True, "1", "true", "True")
    ]


async def _request_production(bot: BotDriver, slack: FakeSlack, services: str) -> str:
    await bot.command(f"production {services}", user="UDEV")
    return run_id_of(plan_cards(slack)[-1])


async def test_an_automatic_rollback_tells_the_channel_mentioning_the_requester(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld, health: FakeHealth
) -> None:
    health.status_for = lambda service, path: (
        503 if world.version("production", service) == "v1.3.0" else 200
    )
    run_id = await _request_production(bot, slack, "api-gateway")

    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2")

    assert (await bot.runtime.runs.get(run_id)).state is DeploymentState.ROLLED_BACK
    [loud] = broadcasts(slack)
    assert loud["text"].startswith("<@UDEV> 🚨 Production deployment FAILED")
    assert f"Deployment ID: {run_id}" in loud["text"]
    assert "Automatic rollback completed" in loud["text"]


async def test_a_rejection_tells_the_channel_mentioning_the_requester(
    bot: BotDriver, slack: FakeSlack
) -> None:
    run_id = await _request_production(bot, slack, "api-gateway")

    await bot.click(REJECT_ACTION, run_id, user="UAPPROVER2")

    assert (await bot.runtime.runs.get(run_id)).state is DeploymentState.REJECTED
    [loud] = broadcasts(slack)
    assert loud["text"] == "<@UDEV> 🛑 Rejected by <@UAPPROVER2>. Nothing was deployed."


async def test_an_expired_request_mentions_the_requester_in_the_thread_only(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    run_id = await _request_production(bot, slack, "api-gateway")

    clock.advance(TWO_HOURS_S)
    await bot.runtime.timers.run_due()
    await bot.settle()

    assert (await bot.runtime.runs.get(run_id)).state is DeploymentState.EXPIRED
    assert broadcasts(slack) == []
    assert thread(slack) == [
        "<@UDEV> ⌛ Expired: no decision within the approval window. Nothing was deployed."
    ]


async def test_a_successful_deploy_stays_in_its_thread(bot: BotDriver, slack: FakeSlack) -> None:
    run_id = await _request_production(bot, slack, "api-gateway")

    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2")

    assert (await bot.runtime.runs.get(run_id)).state is DeploymentState.SUCCEEDED
    assert broadcasts(slack) == []
    assert thread(slack)[-1].startswith("✅ Production deployment successful")
