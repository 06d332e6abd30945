"""Deploys that know about incidents (issue 18, point 3): an open P1/P2 naming a service freezes
its deploys to production until resolved; `--break-glass` goes through with one more approval;
`/rollback` stays allowed; the war room is told. Signed requests, the strict local Slack, moto."""

from __future__ import annotations

from typing import Any

from bot.deploy.views import APPROVE_ACTION
from store.deploy.models import DeploymentState
from store.incident.models import Incident
from tests.driver import BotDriver, run_id_of
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.slack_api import FakeSlack


async def declare(bot: BotDriver, text: str) -> Incident:
    await bot.command(text, command="/incident", user="UCMD", channel="CGENERAL")
    return (await bot.runtime.incident.list_open())[-1]


def plan_cards(slack: FakeSlack) -> list[dict[str, Any]]:
    """The deploy cards posted (the incidents' messages left out)."""
    return [
        c
        for c in slack.of("chat.postMessage")
        if (c.get("metadata") or {}).get("event_type") == "chatops_deploy_card"
    ]


def room(slack: FakeSlack, incident: Incident) -> list[str]:
    return [m.text for m in slack.workspace.channel(incident.channel_id).messages]


def private_reply(slack: FakeSlack) -> str:
    reply: dict[str, Any] = slack.responses[-1]
    return str(reply.get("text", "")) + str(reply.get("blocks", ""))


async def test_a_p1_naming_a_service_refuses_its_deploy_naming_the_war_room(
    bot: BotDriver, slack: FakeSlack
) -> None:
    incident = await declare(bot, "p1 auth-svc login failing")

    await bot.command("production auth-svc", user="UDEV")

    said = private_reply(slack)
    assert plan_cards(slack) == []
    assert f"frozen by P1 `{incident.id}`" in said
    assert f"#{incident.channel_name}" in said
    assert '`--break-glass "<reason>"`' in said
    assert "`/rollback` stays allowed" in said
    assert any(
        "<@UDEV> asked to deploy `auth-svc` to production" in t for t in room(slack, incident)
    )
    assert any("refused" in t for t in room(slack, incident))


async def test_a_service_named_in_the_summary_is_frozen_too(
    bot: BotDriver, slack: FakeSlack
) -> None:
    await declare(bot, "p2 auth-svc logins fail, market-svc checkout too")

    await bot.command("production market-svc", user="UDEV")

    assert plan_cards(slack) == []
    assert "market-svc frozen by P2" in private_reply(slack)


async def test_other_services_staging_and_lower_severities_are_not_frozen(
    bot: BotDriver, slack: FakeSlack
) -> None:
    await declare(bot, "p1 auth-svc login failing")
    await declare(bot, "p3 market-svc slow search")

    await bot.command("production api-gateway", user="UDEV")
    await bot.command("production market-svc", user="UDEV")
    await bot.command("staging auth-svc v1.3.1", user="UDEV")

    assert len(plan_cards(slack)) == 3


async def test_break_glass_goes_through_with_one_more_approval_and_the_room_is_told(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld
) -> None:
    incident = await declare(bot, "p1 auth-svc login failing")

    await bot.command('production auth-svc --break-glass "the fix for this P1"', user="UDEV")
    run_id = run_id_of(plan_cards(slack)[-1])
    for approver in ("UAPPROVER1", "UAPPROVER2"):
        await bot.click(APPROVE_ACTION, run_id, user=approver)
    waiting = await bot.runtime.runs.get(run_id)
    await bot.click(APPROVE_ACTION, run_id, user="ULEAD1")

    assert (waiting.state, waiting.required_approvals) == (DeploymentState.AWAITING_APPROVAL, 3)
    assert (await bot.runtime.runs.get(run_id)).state is DeploymentState.SUCCEEDED
    told = [t for t in room(slack, incident) if "--break-glass" in t]
    assert len(told) == 1
    assert "<@UDEV>" in told[0]
    assert "the fix for this P1" in told[0]


async def test_rollback_stays_allowed_during_the_incident(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld
) -> None:
    await bot.command("production auth-svc", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[-1])
    for approver in ("UAPPROVER1", "UAPPROVER2"):
        await bot.click(APPROVE_ACTION, run_id, user=approver)
    await declare(bot, "p1 auth-svc login failing")

    await bot.command("-y production auth-svc", command="/rollback", user="UAPPROVER1")

    assert world.version("production", "auth-svc") == "v1.2.0"


async def test_the_freeze_lifts_on_resolve(bot: BotDriver, slack: FakeSlack) -> None:
    incident = await declare(bot, "p1 auth-svc login failing")
    await bot.command("production auth-svc", user="UDEV")
    refused = plan_cards(slack)

    await bot.command(
        "resolve restarted the pods", command="/incident", user="UCMD", channel=incident.channel_id
    )
    await bot.command("production auth-svc", user="UDEV")

    assert refused == []
    assert len(plan_cards(slack)) == 1
