"""A rollback that needs approvals, asked for in a war room (issue 16, point 2): its card is
posted where the incident is handled, so the approvers (users and the members of user groups)
are invited there before it is posted, and its mentions reach them."""

from __future__ import annotations

import pytest

from bot.deploy.views import APPROVE_ACTION
from pipeline.kernel.config import Config
from store.deploy.models import DeploymentState, RunKind
from tests.conftest import config_dict
from tests.driver import BotDriver, plan_cards, run_id_of
from tests.fakes.clock import FakeClock
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack

ONCALL = "UONCALL"
HOUR_AND_A_MINUTE_S = 61 * 60.0


@pytest.fixture
def config(health: FakeHealth) -> Config:
    data = config_dict(health)
    data["environments"]["production"]["rollbackers"] = [ONCALL]
    return Config.model_validate(data)


async def _deployed_an_hour_ago(bot: BotDriver, slack: FakeSlack, clock: FakeClock) -> None:
    await bot.command("production api-gateway", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[-1])
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2")
    clock.advance(HOUR_AND_A_MINUTE_S)
    await bot.runtime.timers.run_due()
    await bot.settle()


async def test_the_approvers_are_invited_to_the_war_room_before_its_rollback_card_mentions_them(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    await _deployed_an_hour_ago(bot, slack, clock)
    await bot.command("p1 gateway errors", command="/incident", user=ONCALL, channel="CGEN")
    (incident,) = await bot.runtime.incident.list_open()
    room = incident.channel_id
    before = len(slack.calls)

    await bot.command("production api-gateway -y", command="/rollback", user=ONCALL, channel=room)

    runs = [r for r in await bot.runtime.deploy.history(None) if r.kind is RunKind.ROLLBACK]
    assert [(r.state, r.required_approvals) for r in runs] == [
        (DeploymentState.AWAITING_APPROVAL, 2)
    ]
    calls = [c for c in slack.calls[before:] if c.args.get("channel") == room]
    invited = next(i for i, c in enumerate(calls) if c.method == "conversations.invite")
    card = next(i for i, c in enumerate(calls) if c.method == "chat.postMessage")
    assert invited < card
    members = set(slack.workspace.channel(room).members)
    assert {"UAPPROVER1", "UAPPROVER2", "ULEAD1", "ULEAD2"} <= members
    text = calls[card].args["text"]
    assert "<@UAPPROVER1>, <@UAPPROVER2>, <!subteam^S0LEADS>" in text


async def test_a_rollback_card_outside_a_war_room_invites_nobody(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    await _deployed_an_hour_ago(bot, slack, clock)
    before = len(slack.calls)

    await bot.command("production api-gateway -y", command="/rollback", user=ONCALL)

    assert [c for c in slack.calls[before:] if c.method == "conversations.invite"] == []
