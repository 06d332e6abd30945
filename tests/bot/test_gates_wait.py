"""The wait after the last approval, through signed requests, the strict local Slack, moto and
the injected clock: the card says when the run starts and has a Cancel button for the requester
and the approvers; Cancel stops it before any ECS change; when the wait has passed the run
starts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from bot.deploy.views import APPROVE_ACTION
from bot.gates.views import CANCEL_WAIT_ACTION
from pipeline.kernel.config import Config
from store.deploy.models import DeploymentState
from tests.conftest import SERVICES, config_dict
from tests.driver import BotDriver, plan_cards, raw_user_ids, run_id_of, thread
from tests.fakes.clock import FakeClock
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack

MINUTE = 60.0
WAIT_S = 5 * MINUTE


class HeldClock(FakeClock):
    """A FakeClock whose sleeps, while `held`, last until the test moves time past their end
    (`advance`); `asleep` is set when one begins. Unheld, it sleeps as FakeClock does."""

    def __init__(self) -> None:
        super().__init__()
        self.held = False
        self.asleep = asyncio.Event()
        self._moved = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        if not self.held:
            await super().sleep(seconds)
            return
        self.slept.append(seconds)
        until = self.now() + timedelta(seconds=seconds)
        self.asleep.set()
        while self.now() < until:
            moved = self._moved
            await moved.wait()

    def advance(self, seconds: float) -> None:
        super().advance(seconds)
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    async def next_sleep(self) -> None:
        """Wait (in the test's own loop) until the bot begins a held sleep."""
        self.asleep.clear()
        await self.asleep.wait()

    def release(self, seconds: float) -> None:
        """Stop holding, and let `seconds` pass for whoever sleeps now."""
        self.held = False
        self.advance(seconds)


@pytest.fixture
def clock() -> HeldClock:
    return HeldClock()


@pytest.fixture
def config(health: FakeHealth) -> Config:
    data = config_dict(health)
    data["environments"]["production"]["wait"] = "5m"
    return Config.model_validate(data)


@pytest.fixture
async def waiting(bot: BotDriver, slack: FakeSlack, clock: HeldClock) -> AsyncIterator[str]:
    """A production deploy of auth-svc by UDEV, approved twice, in its wait: its id."""
    await bot.command("production auth-svc", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[0])
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    clock.held = True
    asleep = asyncio.ensure_future(clock.next_sleep())
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2", wait_runs=False)
    await asleep
    await bot.settle(wait_runs=False)  # the card's redraw runs in the background
    yield run_id
    if clock.held:
        clock.release(WAIT_S)


def production(world: EcsWorld) -> dict[str, str]:
    return {s: world.task_definition("production", s) for s in SERVICES}


async def card_of(bot: BotDriver, slack: FakeSlack, run_id: str) -> list[dict[str, Any]]:
    """A run's card as Slack shows it now (after every update)."""
    run = await bot.runtime.runs.get(run_id)
    assert run.channel_id is not None
    [card] = [m for m in slack.workspace.channel(run.channel_id).messages if m.ts == run.message_ts]
    return list(card.blocks)


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


async def cancel(bot: BotDriver, run_id: str, user: str) -> None:
    await bot.click(CANCEL_WAIT_ACTION, run_id, user=user, wait_runs=False)


class TestTheWait:
    async def test_the_card_says_when_the_run_starts_and_offers_cancel(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld, waiting: str
    ) -> None:
        before = production(world)

        blocks = await card_of(bot, slack, waiting)

        assert "⏳ *Approved:* starts in 5m, at 09:05 UTC (the wait after approval)" in str(blocks)
        [button] = buttons(blocks)
        assert (button["action_id"], button["value"], button["text"]["text"]) == (
            CANCEL_WAIT_ACTION,
            waiting,
            "Cancel",
        )
        assert button["confirm"]["text"]["text"].startswith("Nothing has changed yet")
        assert (await bot.runtime.runs.get(waiting)).state is DeploymentState.WAITING
        assert production(world) == before

    async def test_the_card_counts_down_as_the_wait_runs(
        self, bot: BotDriver, slack: FakeSlack, clock: HeldClock, waiting: str
    ) -> None:
        clock.advance(90)
        await clock.next_sleep()
        await bot.settle(wait_runs=False)

        blocks = await card_of(bot, slack, waiting)
        assert "starts in 3m 30s, at 09:05 UTC" in str(blocks)

    async def test_when_the_wait_has_passed_the_run_starts(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld, clock: HeldClock, waiting: str
    ) -> None:
        clock.advance(WAIT_S - 1)
        await clock.next_sleep()
        assert (await bot.runtime.runs.get(waiting)).state is DeploymentState.WAITING

        clock.release(1)
        await bot.settle()

        run = await bot.runtime.runs.get(waiting)
        assert run.state is DeploymentState.SUCCEEDED
        assert run.started_at is not None
        assert run.started_at - run.created_at >= timedelta(seconds=WAIT_S)
        assert world.version("production", "auth-svc") == "v1.3.0"
        assert buttons(await card_of(bot, slack, waiting))[0]["text"]["text"] == "Roll back"

    async def test_the_thread_says_the_wait_began_and_ended(
        self, bot: BotDriver, slack: FakeSlack, clock: HeldClock, waiting: str
    ) -> None:
        clock.release(WAIT_S)
        await bot.settle()

        said = [str(m["text"]) for m in slack.of("chat.postMessage") if "thread_ts" in m]
        assert "• wait started: 300s before the run starts" in said
        assert "✅ wait done" in said
        assert said.index("✅ wait done") > said.index("• wait started: 300s before the run starts")

    async def test_the_status_of_the_environment_lists_the_waiting_run(
        self, bot: BotDriver, waiting: str
    ) -> None:
        reply = await bot.command("status production", user="UOTHER", wait_runs=False)

        assert f"*In progress*\n• `{waiting}` waiting by <@UDEV>" in reply["body"]["text"]

    async def test_a_restart_during_the_wait_keeps_the_time_the_run_starts(
        self, bot: BotDriver, world: EcsWorld, clock: HeldClock, waiting: str
    ) -> None:
        start_at = (await bot.runtime.runs.get(waiting)).wait_until
        clock.advance(2 * MINUTE)
        await clock.next_sleep()

        await bot.stop()
        asleep = asyncio.ensure_future(clock.next_sleep())
        await bot.start()
        await asleep

        run = await bot.runtime.runs.get(waiting)
        assert (run.state, run.wait_until) == (DeploymentState.WAITING, start_at)
        assert world.version("production", "auth-svc") == "v1.2.0"
        clock.release(3 * MINUTE)
        await bot.settle()
        run = await bot.runtime.runs.get(waiting)
        assert (run.state, run.started_at) == (DeploymentState.SUCCEEDED, start_at)


class TestCancel:
    @pytest.mark.parametrize("user", ["UDEV", "UAPPROVER1", "ULEAD1"])
    async def test_the_requester_or_an_approver_cancels_it_before_any_ecs_change(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        world: EcsWorld,
        clock: HeldClock,
        waiting: str,
        user: str,
    ) -> None:
        before = production(world)

        await cancel(bot, waiting, user)
        clock.release(WAIT_S)
        await bot.settle()

        run = await bot.runtime.runs.get(waiting)
        assert run.state is DeploymentState.CANCELLED
        assert run.started_at is None
        assert production(world) == before
        blocks = await card_of(bot, slack, waiting)
        assert buttons(blocks) == []
        assert f"🚫 Cancelled: <@{user}> cancelled it during the wait." in str(blocks)
        assert f"• wait cancelled: by <@{user}>" in thread(slack)
        assert raw_user_ids([str(blocks), *thread(slack)]) == []

    async def test_a_cancel_by_an_approver_tells_the_channel_mentioning_the_requester(
        self, bot: BotDriver, slack: FakeSlack, clock: HeldClock, waiting: str
    ) -> None:
        await cancel(bot, waiting, "UAPPROVER1")
        clock.release(WAIT_S)
        await bot.settle()

        loud = [c for c in slack.of("chat.postMessage") if c.get("reply_broadcast")]
        assert [c["text"] for c in loud] == [
            "<@UDEV> 🚫 Cancelled: <@UAPPROVER1> cancelled it during the wait. Nothing was "
            "deployed."
        ]

    async def test_anyone_else_is_refused_privately_and_the_wait_goes_on(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld, clock: HeldClock, waiting: str
    ) -> None:
        await cancel(bot, waiting, "UOTHER")

        reply = slack.responses[-1]
        assert reply["response_type"] == "ephemeral"
        assert reply["text"].startswith(
            "Only <@UDEV> or an approver of `production` can cancel it; your click changed nothing."
        )
        assert (await bot.runtime.runs.get(waiting)).state is DeploymentState.WAITING
        clock.release(WAIT_S)
        await bot.settle()
        assert world.version("production", "auth-svc") == "v1.3.0"

    async def test_the_cancel_is_in_the_audit_log(self, bot: BotDriver, waiting: str) -> None:
        await cancel(bot, waiting, "UAPPROVER1")

        entry = (await bot.runtime.audit.recent())[0]
        assert (entry.actor, entry.action, entry.outcome, entry.detail) == (
            "UAPPROVER1",
            f"click cancel the wait {waiting}",
            "cancelled",
            waiting,
        )

    async def test_cancel_once_the_run_has_started_changes_nothing(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld, clock: HeldClock, waiting: str
    ) -> None:
        clock.release(WAIT_S)
        await bot.settle()

        await cancel(bot, waiting, "UDEV")

        assert slack.responses[-1]["text"].startswith(
            f"Deployment `{waiting}` is no longer waiting (succeeded); your click changed nothing."
        )
        assert (await bot.runtime.runs.get(waiting)).state is DeploymentState.SUCCEEDED


async def test_no_wait_is_configured_by_default_and_the_run_starts_at_once(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld, health: FakeHealth
) -> None:
    bot.config = Config.model_validate(config_dict(health))
    await bot.restart()
    await bot.command("production auth-svc", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[0])

    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2")

    run = await bot.runtime.runs.get(run_id)
    assert run.state is DeploymentState.SUCCEEDED
    assert run.wait_until is None
    assert world.version("production", "auth-svc") == "v1.3.0"
