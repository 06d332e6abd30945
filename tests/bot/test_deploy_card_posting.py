"""The plan card when Slack is slow (item 3) and after the bot died while posting it (item 2):
a card is looked for by its metadata before it is posted again, and the requester is told what
happened either way."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest

from bot.deploy.adapter import CARD_EVENT
from bot.deploy.views import APPROVE_ACTION
from bot.settings import Settings
from commands.runs.cards import LOOK_AGAIN_S
from commands.runs.lifecycle import UNAPPROVED_START_WINDOW
from store.db import Store
from store.deploy.models import Deployment, DeploymentId, DeploymentState, Target
from store.deploy.repository import Deployments
from store.requests import OpenRequests
from tests.driver import BotDriver, last_card
from tests.fakes.clock import FakeClock
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.slack_api import FakeSlack

CHANNEL = "CDEPLOYS"
# Far longer than the client waits in these tests: a post that never gets through.
NEVER_S = 60.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The client gives up on Slack after 0.3 s instead of 15, so slowness costs little."""
    return settings.model_copy(update={"slack_timeout_s": 0.3})


def cards_in_channel(slack: FakeSlack) -> list[Any]:
    """Top-level messages in the deploy channel, as the channel shows them."""
    return [m for m in slack.workspace.channel(CHANNEL).messages if m.thread_ts is None]


def said_privately(slack: FakeSlack, user: str = "UDEV") -> list[str]:
    """What the requester read privately: response_url answers and ephemeral messages."""
    via_url = [str(r.get("text", "")) for r in slack.responses]
    ephemeral = [str(c["text"]) for c in slack.of("chat.postEphemeral") if c["user"] == user]
    return via_url + ephemeral


def trouble(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


# -- a slow Slack --------------------------------------------------------------------------


async def test_a_card_slack_posted_but_never_confirmed_is_found_not_posted_twice(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld, caplog: pytest.LogCaptureFixture
) -> None:
    slack.accept_then_fail("chat.postMessage", hang=True)

    await bot.command("staging api-gateway v1.4.0", user="UDEV")

    [card] = cards_in_channel(slack)
    [run] = await bot.runtime.deploy.history(None)
    assert run.message_ts == card.ts
    assert run.state is DeploymentState.SUCCEEDED
    assert world.version("staging", "api-gateway") == "v1.4.0"
    assert "✅ Staging deployment successful" in str(card.blocks)
    assert any("Slack was slow to confirm the plan card" in s for s in said_privately(slack))
    assert trouble(caplog) == []


async def test_a_card_slack_failed_to_post_is_posted_again_after_looking_for_it(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    slack.http_error_next("chat.postMessage", 500)

    await bot.command("production api-gateway", user="UDEV")

    [card] = cards_in_channel(slack)
    [run] = await bot.runtime.deploy.history(None)
    assert run.state is DeploymentState.AWAITING_APPROVAL
    assert run.message_ts == card.ts
    assert len(slack.of("conversations.history")) == 2
    assert LOOK_AGAIN_S in clock.slept
    assert any("Slack was slow to confirm the plan card" in s for s in said_privately(slack))


async def test_a_card_neither_confirmed_nor_found_cancels_the_request_and_says_so(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld, caplog: pytest.LogCaptureFixture
) -> None:
    before = world.task_definition("staging", "api-gateway")
    slack.delay("chat.postMessage", NEVER_S)

    await bot.command("staging api-gateway v1.4.0", user="UDEV")

    [run] = await bot.runtime.deploy.history(None)
    assert run.state is DeploymentState.CANCELLED
    assert cards_in_channel(slack) == []
    [said] = said_privately(slack)
    assert "Slack did not answer in time" in said
    assert f"The card is not in this channel either, so I cancelled deployment `{run.id}`" in (said)
    assert "Nothing was deployed." in said
    assert world.task_definition("staging", "api-gateway") == before
    assert trouble(caplog) == []


async def test_a_request_still_posting_its_card_is_no_orphan_for_the_sweep(
    bot: BotDriver, slack: FakeSlack
) -> None:
    slack.delay("chat.postMessage", 0.2)
    asking = asyncio.create_task(bot.command("production api-gateway", user="UDEV"))
    for _ in range(500):
        if slack.of("chat.postMessage"):
            break
        await asyncio.sleep(0.01)

    recovered = await bot.runtime.runs.recover_orphans()
    await asking

    assert recovered == []
    assert len(cards_in_channel(slack)) == 1


# -- after a crash while posting ---------------------------------------------------------------


async def _left_by_a_crash(
    bot: BotDriver,
    slack: FakeSlack,
    world: EcsWorld,
    clock: FakeClock,
    *,
    environment: str = "production",
    age: timedelta = timedelta(minutes=1),
    card_posted: bool = False,
) -> DeploymentId:
    """A request as a process killed while posting its card leaves it: recorded, awaiting
    approval, no card ts; with `card_posted`, Slack has the card. The bot is stopped."""
    run_id = DeploymentId("1795337940-dead01")
    now = clock.now()
    production = environment == "production"
    service = "api-gateway"
    await bot.stop()
    store = await Store.open(bot.settings.db_path)
    try:
        await Deployments(store).create(
            Deployment(
                id=run_id,
                environment=environment,
                requested_by="UDEV",
                version=None if production else "v1.4.0",
                state=DeploymentState.AWAITING_APPROVAL,
                stage=None,
                required_approvals=2 if production else 0,
                channel_id=CHANNEL,
                message_ts=None,
                created_at=now - age,
                updated_at=now - age,
                approval_due_at=now - age + timedelta(hours=2) if production else None,
                started_at=None,
                finished_at=None,
                error=None,
                targets=(
                    Target(
                        service=service,
                        current_version="v1.2.0" if production else "v1.3.0",
                        target_version="v1.3.0" if production else "v1.4.0",
                        previous_task_def=world.task_definition(environment, service),
                    ),
                ),
            )
        )
    finally:
        await store.close()
    if card_posted:
        slack.workspace.post(
            CHANNEL,
            user=slack.workspace.bot_user,
            text="🚀 Deploy to production",
            blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "plan"}}],
            metadata={"event_type": CARD_EVENT, "event_payload": {"key": run_id}},
        )
    return run_id


async def test_a_card_posted_before_the_crash_is_found_at_start_up_and_its_buttons_work(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld, clock: FakeClock
) -> None:
    run_id = await _left_by_a_crash(bot, slack, world, clock, card_posted=True)

    await bot.start()
    await bot.settle()

    [card] = cards_in_channel(slack)
    run = await bot.runtime.runs.get(run_id)
    assert run.message_ts == card.ts
    assert "*Awaiting approval:* 0/2" in str(card.blocks)
    assert any(
        "the card is in the channel now and awaits approval" in s for s in said_privately(slack)
    )
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1", message_ts=card.ts)
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2", message_ts=card.ts)
    assert (await bot.runtime.runs.get(run_id)).state is DeploymentState.SUCCEEDED
    assert world.version("production", "api-gateway") == "v1.3.0"


async def test_a_card_never_posted_before_the_crash_is_posted_at_start_up(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld, clock: FakeClock
) -> None:
    run_id = await _left_by_a_crash(bot, slack, world, clock)

    await bot.start()
    await bot.settle()

    [card] = cards_in_channel(slack)
    assert card.metadata == {"event_type": CARD_EVENT, "event_payload": {"key": run_id}}
    assert (await bot.runtime.runs.get(run_id)).message_ts == card.ts


async def test_a_staging_request_cut_short_by_a_crash_starts_when_the_bot_is_back(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld, clock: FakeClock
) -> None:
    run_id = await _left_by_a_crash(bot, slack, world, clock, environment="staging")

    await bot.start()
    await bot.settle()

    run = await bot.runtime.runs.get(run_id)
    assert run.state is DeploymentState.SUCCEEDED
    assert world.version("staging", "api-gateway") == "v1.4.0"
    assert "✅ Staging deployment successful" in last_card(slack)
    assert any("the deploy has started" in s for s in said_privately(slack))


async def test_a_staging_request_found_long_after_the_crash_is_cancelled_not_started(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld, clock: FakeClock
) -> None:
    before = world.task_definition("staging", "api-gateway")
    run_id = await _left_by_a_crash(
        bot,
        slack,
        world,
        clock,
        environment="staging",
        age=UNAPPROVED_START_WINDOW + timedelta(minutes=1),
    )

    await bot.start()
    await bot.settle()

    run = await bot.runtime.runs.get(run_id)
    assert run.state is DeploymentState.CANCELLED
    assert world.task_definition("staging", "api-gateway") == before
    assert cards_in_channel(slack) == []
    assert any(
        f"deployment `{run_id}` should have started" in s and "cancelled it" in s
        for s in said_privately(slack)
    )


async def test_a_request_whose_window_passed_while_the_bot_was_down_expires_and_is_told(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld, clock: FakeClock
) -> None:
    run_id = await _left_by_a_crash(bot, slack, world, clock, age=timedelta(hours=3))

    await bot.start()
    await bot.settle()

    assert (await bot.runtime.runs.get(run_id)).state is DeploymentState.EXPIRED
    assert cards_in_channel(slack) == []
    assert any("its approval window has passed, so it expired" in s for s in said_privately(slack))


async def test_an_orphan_whose_card_slack_refuses_is_cancelled_and_told_why(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld, clock: FakeClock
) -> None:
    run_id = await _left_by_a_crash(bot, slack, world, clock)
    slack.fail_next("chat.postMessage", "restricted_action")

    await bot.start()
    await bot.settle()

    assert (await bot.runtime.runs.get(run_id)).state is DeploymentState.CANCELLED
    [said] = said_privately(slack)
    assert "could not post it now, so I cancelled it" in said
    assert "`restricted_action`" in said


async def test_an_orphan_is_left_for_the_next_sweep_while_its_channel_cannot_be_read(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld, clock: FakeClock
) -> None:
    run_id = await _left_by_a_crash(bot, slack, world, clock, card_posted=True)
    slack.http_error_next("conversations.history", 500)

    await bot.start()
    await bot.settle()
    waiting = await bot.runtime.runs.get(run_id)
    await bot.runtime.sweep()
    await bot.settle()

    assert waiting.message_ts is None
    [card] = cards_in_channel(slack)
    assert (await bot.runtime.runs.get(run_id)).message_ts == card.ts


async def test_a_click_on_a_card_the_bot_never_knew_makes_it_the_runs_card(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld, clock: FakeClock
) -> None:
    """A card that reached Slack after its request was cancelled shows it on the first click."""
    slack.delay("chat.postMessage", NEVER_S)
    await bot.command("production api-gateway", user="UDEV")
    [run] = await bot.runtime.deploy.history(None)
    slack.delay("chat.postMessage", 0)
    late = slack.workspace.post(
        CHANNEL,
        user=slack.workspace.bot_user,
        text="🚀 Deploy to production",
        metadata={"event_type": CARD_EVENT, "event_payload": {"key": run.id}},
    )

    await bot.click(APPROVE_ACTION, run.id, user="UAPPROVER1", message_ts=late.ts)

    assert "🚫 Cancelled" in str(slack.workspace.message(CHANNEL, late.ts).blocks)
    assert (await bot.runtime.runs.get(run.id)).state is DeploymentState.CANCELLED


# -- requests a crash cut short before they were recorded ------------------------------------


async def _journal(bot: BotDriver, *, action: str, ref: str | None, channel: str) -> None:
    await bot.stop()
    store = await Store.open(bot.settings.db_path)
    try:
        await OpenRequests(store).open(
            at=bot.clock.now(), actor="UDEV", action=action, channel_id=channel, ref=ref
        )
    finally:
        await store.close()


async def test_a_deploy_cut_short_before_its_record_is_told_that_nothing_happened(
    bot: BotDriver, slack: FakeSlack
) -> None:
    await _journal(
        bot, action="/deploy staging api-gateway v1.4.0", ref="1795337940-gone01", channel=CHANNEL
    )

    await bot.start()
    await bot.settle()

    [said] = said_privately(slack)
    assert "The bot restarted before it finished `/deploy staging api-gateway v1.4.0`" in said
    assert "nothing was recorded or changed. Send it again." in said
    [entry] = await bot.runtime.audit.recent()
    assert entry.action == "/deploy staging api-gateway v1.4.0"
    assert entry.outcome == "interrupted: the bot restarted before this finished"


async def test_a_request_cut_short_after_its_record_is_left_to_that_records_recovery(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld, clock: FakeClock
) -> None:
    run_id = await _left_by_a_crash(bot, slack, world, clock, card_posted=True)
    await _journal(bot, action="/deploy production api-gateway", ref=run_id, channel=CHANNEL)

    await bot.start()
    await bot.settle()
    if not (await bot.runtime.runs.get(run_id)).message_ts:
        # A Slack call that failed at start-up (a loaded CI machine) leaves it to the sweep.
        await bot.runtime.sweep()
        await bot.settle()

    assert not any("The bot restarted before it finished" in s for s in said_privately(slack))
    assert any("awaits approval" in s for s in said_privately(slack))
    [entry] = await bot.runtime.audit.recent()
    assert entry.outcome.startswith("interrupted")


async def test_a_click_cut_short_is_told_to_check_its_result(
    bot: BotDriver, slack: FakeSlack
) -> None:
    await _journal(bot, action="click approve 1795337940-abc123", ref=None, channel=CHANNEL)

    await bot.start()
    await bot.settle()

    [said] = said_privately(slack)
    assert "while it was handling `click approve 1795337940-abc123`" in said
    assert "Check its result before trying again." in said
