"""Approve and Reject clicks: who may decide, each approver once, rejection and expiry."""

from __future__ import annotations

from typing import Any

from bot.deploy.views import APPROVE_ACTION, REJECT_ACTION
from store.deploy.models import DeploymentState
from tests.driver import BotDriver, last_card, plan_cards, run_id_of
from tests.fakes.clock import FakeClock
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.slack_api import FakeSlack

TWO_HOURS_S = 2 * 3600


async def _request_production(bot: BotDriver, slack: FakeSlack, *, user: str = "UDEV") -> str:
    await bot.command("production api-gateway", user=user)
    return run_id_of(plan_cards(slack)[-1])


def _refusal(slack: FakeSlack) -> dict[str, Any]:
    said = slack.responses[-1]
    assert said["response_type"] == "ephemeral"
    assert said["replace_original"] is False
    return said


def _buttons(card: dict[str, Any]) -> list[dict[str, Any]]:
    actions = [b for b in card["blocks"] if b["type"] == "actions"]
    return [e for block in actions for e in block["elements"]]


async def test_the_requester_cannot_approve_their_own_deploy(
    bot: BotDriver, slack: FakeSlack
) -> None:
    run_id = await _request_production(bot, slack, user="UAPPROVER1")

    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")

    assert "You requested this deployment" in _refusal(slack)["text"]
    run = await bot.runtime.runs.get(run_id)
    assert run.state is DeploymentState.AWAITING_APPROVAL
    assert run.approvals == ()
    assert slack.of("chat.update") == []


async def test_a_user_who_is_not_an_approver_is_refused(bot: BotDriver, slack: FakeSlack) -> None:
    run_id = await _request_production(bot, slack)

    await bot.click(APPROVE_ACTION, run_id, user="UINTRUDER")

    said = _refusal(slack)["text"]
    assert "Only approvers of `production`" in said
    assert "<@UAPPROVER1>" in said
    assert "<!subteam^S0LEADS>" in said
    run = await bot.runtime.runs.get(run_id)
    assert run.approvals == ()
    assert slack.of("chat.update") == []


async def test_members_of_an_approver_user_group_can_approve(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld
) -> None:
    run_id = await _request_production(bot, slack)

    await bot.click(APPROVE_ACTION, run_id, user="ULEAD1")
    await bot.click(APPROVE_ACTION, run_id, user="ULEAD2")

    run = await bot.runtime.runs.get(run_id)
    assert run.approved_by == ("ULEAD1", "ULEAD2")
    assert run.state is DeploymentState.SUCCEEDED
    assert {"usergroup": "S0LEADS"}.items() <= slack.of("usergroups.users.list")[0].items()
    assert world.version("production", "api-gateway") == "v1.3.0"


async def test_a_double_click_is_counted_once(bot: BotDriver, slack: FakeSlack) -> None:
    run_id = await _request_production(bot, slack)

    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")

    assert "each approver counts once" in _refusal(slack)["text"]
    run = await bot.runtime.runs.get(run_id)
    assert run.approved_by == ("UAPPROVER1",)
    assert run.state is DeploymentState.AWAITING_APPROVAL
    assert "approvals 1/2" in last_card(slack)
    assert "Approved by <@UAPPROVER1>" in last_card(slack)


async def test_a_reject_from_an_approver_ends_the_request(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld
) -> None:
    before = world.task_definition("production", "api-gateway")
    run_id = await _request_production(bot, slack)

    await bot.click(REJECT_ACTION, run_id, user="UAPPROVER2")

    run = await bot.runtime.runs.get(run_id)
    assert run.state is DeploymentState.REJECTED
    assert "🛑 Rejected by <@UAPPROVER2>. Nothing was deployed." in last_card(slack)
    assert _buttons(slack.of("chat.update")[-1]) == []
    assert world.task_definition("production", "api-gateway") == before


async def test_an_unapproved_request_expires_at_its_due_time_and_the_card_says_so(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    run_id = await _request_production(bot, slack)

    clock.advance(TWO_HOURS_S)
    fired = await bot.runtime.timers.run_due()
    await bot.settle()

    run = await bot.runtime.runs.get(run_id)
    assert fired == [f"approval:{run_id}"]
    assert run.state is DeploymentState.EXPIRED
    assert run.finished_at == run.approval_due_at
    assert "⌛ Expired" in last_card(slack)
    assert _buttons(slack.of("chat.update")[-1]) == []


async def test_buttons_of_an_expired_request_refuse_and_change_nothing(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    run_id = await _request_production(bot, slack)
    clock.advance(TWO_HOURS_S + 1)
    await bot.runtime.timers.run_due()

    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")

    assert "already expired" in _refusal(slack)["text"]
    run = await bot.runtime.runs.get(run_id)
    assert run.state is DeploymentState.EXPIRED
    assert run.approvals == ()


async def test_a_click_after_the_window_expires_the_request_even_before_its_timer_fires(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    """A timer fires a moment after its due time; the window must hold in that moment too."""
    run_id = await _request_production(bot, slack)
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    clock.advance(TWO_HOURS_S + 1)

    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2")

    assert "expired" in _refusal(slack)["text"]
    run = await bot.runtime.runs.get(run_id)
    assert run.state is DeploymentState.EXPIRED
    assert run.approved_by == ("UAPPROVER1",)
    assert "⌛ Expired" in last_card(slack)


async def test_production_buttons_ask_for_confirmation(bot: BotDriver, slack: FakeSlack) -> None:
    await _request_production(bot, slack)

    buttons = _buttons(plan_cards(slack)[0])

    assert [b["action_id"] for b in buttons] == [APPROVE_ACTION, REJECT_ACTION]
    assert all("confirm" in b for b in buttons)
    assert "api-gateway" in buttons[0]["confirm"]["text"]["text"]


async def test_a_card_that_needs_no_approval_has_no_buttons_and_says_so(
    bot: BotDriver, slack: FakeSlack
) -> None:
    await bot.command("staging api-gateway v1.4.0")

    card = plan_cards(slack)[0]

    assert _buttons(card) == []
    assert "no approval needed" in str(card["blocks"])
    assert "approvals 0/0" not in str(card["blocks"])


async def test_the_plan_card_mentions_the_approvers_users_and_groups(
    bot: BotDriver, slack: FakeSlack
) -> None:
    await _request_production(bot, slack)

    card = plan_cards(slack)[-1]
    asking = "<@UAPPROVER1>, <@UAPPROVER2>, <!subteam^S0LEADS>"
    assert f"👀 Approvers: {asking} · 2 approvals needed" in str(card["blocks"])
    assert asking in card["text"]  # the text Slack notifies with


async def test_the_approvers_line_goes_once_the_request_is_decided(
    bot: BotDriver, slack: FakeSlack
) -> None:
    run_id = await _request_production(bot, slack)

    await bot.click(REJECT_ACTION, run_id, user="UAPPROVER2")

    assert "👀 Approvers" not in last_card(slack)
