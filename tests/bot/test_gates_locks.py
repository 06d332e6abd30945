"""Environment locks through signed requests, the strict local Slack, moto and the injected
clock: `/deploy lock`, `/deploy unlock`, the lock in `/deploy status <environment>`, other
people's deploys refused, the holder's allowed, and locks that end on time, also across a
restart."""

from __future__ import annotations

from typing import Any

import pytest

from bot.deploy.views import APPROVE_ACTION
from pipeline.kernel.config import Config
from store.deploy.models import DeploymentState
from tests.conftest import SERVICES, config_dict
from tests.driver import BotDriver, plan_cards, raw_user_ids, run_id_of, thread
from tests.fakes.clock import FakeClock
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack

HOUR = 3600.0
HOLDER = "UDEV"
SOMEONE = "UOTHER"
LOCKED = (
    "`production` is locked by <@UDEV> since 2026-11-22 09:00 UTC until 2026-11-22 11:00 UTC: "
    "release train."
)


def ack_text(reply: dict[str, Any], *, seen_by: str = "ephemeral") -> str:
    body = reply["body"]
    assert body["response_type"] == seen_by
    return str(body["text"])


def cards(slack: FakeSlack) -> list[dict[str, Any]]:
    """The plan cards, without the lock's own announcements."""
    return [c for c in plan_cards(slack) if "blocks" in c]


def told_channel(slack: FakeSlack, reply: dict[str, Any]) -> str:
    """What the bot posted in the channel for a lock or unlock (issue 16: a message of its own
    for everyone there, not an answer only the person sees); the ack itself says nothing."""
    assert reply["body"] == ""
    posted = [c for c in slack.of("chat.postMessage") if c["channel"] == "CDEPLOYS"]
    return str(posted[-1]["text"])


def said(slack: FakeSlack) -> str:
    """The last reply the bot sent through a response_url, checked to be private."""
    reply = slack.responses[-1]
    assert reply["response_type"] == "ephemeral"
    return str(reply["text"])


def production(world: EcsWorld) -> dict[str, str]:
    return {s: world.task_definition("production", s) for s in SERVICES}


async def lock(bot: BotDriver, text: str = "release train for 2h") -> dict[str, Any]:
    return await bot.command(f"lock production {text}", user=HOLDER)


async def status(bot: BotDriver) -> str:
    return ack_text(await bot.command("status production", user=SOMEONE))


async def refused(bot: BotDriver, slack: FakeSlack, *, user: str = SOMEONE) -> bool:
    """Whether `user`'s deploy to production is refused for the lock (nothing recorded then)."""
    before = len(await bot.runtime.deploy.history(None))
    await bot.command("production auth-svc", user=user)
    if len(await bot.runtime.deploy.history(None)) > before:
        return False
    assert "is locked by" in said(slack)
    return True


class TestLocking:
    async def test_a_lock_is_announced_in_the_channel_with_its_reason_and_duration(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        reply = await lock(bot)

        assert told_channel(slack, reply) == (
            "🔒 <@UDEV> locked `production` for 2h: release train. Other people's deploys "
            "there are refused until `/deploy unlock production`."
        )

    async def test_the_status_shows_who_why_since_and_until(self, bot: BotDriver) -> None:
        await lock(bot)

        text = await status(bot)

        assert "🔒 Locked by <@UDEV> since <!date^1795338000^" in text
        assert "|2026-11-22 09:00 UTC> until <!date^1795345200^" in text
        assert "|2026-11-22 11:00 UTC>: release train" in text

    async def test_a_lock_without_a_duration_or_reason_says_so(self, bot: BotDriver) -> None:
        await bot.command("lock production", user=HOLDER)

        text = await status(bot)

        assert "|2026-11-22 09:00 UTC>: no reason given" in text
        assert " until " not in text

    async def test_an_unlocked_environment_says_so(self, bot: BotDriver) -> None:
        assert "🔓 Not locked" in await status(bot)

    async def test_locking_a_locked_environment_names_who_holds_it(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        await lock(bot)

        reply = await bot.command("lock production hotfix for 1h", user=SOMEONE)

        assert ack_text(reply).startswith(f"{LOCKED} Nothing was changed.")
        assert "|2026-11-22 11:00 UTC>: release train" in await status(bot)

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("lock", "Say which environment: `/deploy lock <environment>"),
            ("lock qa", "No environment is called `qa`"),
            ("lock production for soon", "`soon` is not a duration; end with `for 30m`"),
            (
                "lock production waiting for QA",
                '`/deploy lock production "waiting for QA"`',
            ),
            ("lock production for 0s", "A lock lasts more than 0s"),
            ("unlock", "Say which environment: `/deploy unlock <environment>`"),
            ("unlock production now", "Say which environment: `/deploy unlock <environment>`"),
            ("unlock qa", "No environment is called `qa`"),
        ],
    )
    async def test_bad_lock_input_is_answered_privately_and_changes_nothing(
        self, bot: BotDriver, text: str, expected: str
    ) -> None:
        reply = await bot.command(text, user=HOLDER)

        assert expected in ack_text(reply)
        assert "🔓 Not locked" in await status(bot)

    async def test_a_quoted_reason_may_end_in_for(self, bot: BotDriver) -> None:
        await bot.command('lock production "waiting for QA"', user=HOLDER)

        assert ": waiting for QA" in await status(bot)


class TestDeploysUnderALock:
    async def test_another_persons_deploy_is_refused_with_who_why_since_and_until(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld
    ) -> None:
        await lock(bot)
        before = production(world)

        await bot.command("production auth-svc", user=SOMEONE)

        assert said(slack).startswith(
            f"{LOCKED} Nothing was planned; ask the holder to `/deploy unlock production`, or wait."
        )
        assert await bot.runtime.deploy.history(None) == []
        assert cards(slack) == []
        assert production(world) == before

    async def test_the_holder_may_deploy(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld
    ) -> None:
        await lock(bot)

        await bot.command("production auth-svc", user=HOLDER)
        run_id = run_id_of(cards(slack)[0])
        await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
        await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2")

        assert (await bot.runtime.runs.get(run_id)).state is DeploymentState.SUCCEEDED
        assert world.version("production", "auth-svc") == "v1.3.0"

    async def test_a_dry_run_shows_the_lock_as_a_failing_check(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        await lock(bot)

        await bot.command("production auth-svc --dry-run", user=SOMEONE)

        text = said(slack)
        assert f"❌ lock: {LOCKED}" in text
        assert "❌ It would be refused: 1 check failed." in text

    async def test_a_lock_taken_while_a_deploy_awaits_approval_stops_it_before_any_change(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld
    ) -> None:
        """The pre-flight checks run again just before the run starts."""
        await bot.command("production auth-svc", user=SOMEONE)
        run_id = run_id_of(cards(slack)[0])
        await lock(bot)
        before = production(world)

        await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
        await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2")

        run = await bot.runtime.runs.get(run_id)
        assert run.state is DeploymentState.ROLLED_BACK
        assert "Pre-flight check `lock` failed" in (run.error or "")
        assert "release train" in (run.error or "")
        assert production(world) == before
        card = str(slack.of("chat.update")[-1]["blocks"])
        assert f"`production` is locked by <@{HOLDER}>" in card
        assert f"`production` is locked by <@{HOLDER}>" in "".join(thread(slack))
        assert raw_user_ids([card, *thread(slack)]) == []


class TestExpiry:
    async def test_a_lock_holds_until_its_end_and_not_a_moment_longer(
        self, bot: BotDriver, slack: FakeSlack, clock: FakeClock
    ) -> None:
        await lock(bot)

        clock.advance(2 * HOUR - 1)
        assert await refused(bot, slack)
        clock.advance(1)
        fired = await bot.runtime.timers.run_due()

        assert fired == ["lock:production"]
        assert "🔓 Not locked" in await status(bot)
        assert not await refused(bot, slack)

    async def test_a_lock_survives_a_restart_and_still_ends_on_time(
        self, bot: BotDriver, slack: FakeSlack, clock: FakeClock
    ) -> None:
        await lock(bot)

        await bot.restart()
        clock.advance(HOUR)
        assert await refused(bot, slack)
        await bot.restart()
        clock.advance(HOUR)
        fired = await bot.runtime.timers.run_due()

        assert fired == ["lock:production"]
        assert "🔓 Not locked" in await status(bot)
        assert not await refused(bot, slack)

    async def test_a_lock_that_ended_while_the_bot_was_down_is_gone_at_start_up(
        self, bot: BotDriver, slack: FakeSlack, clock: FakeClock
    ) -> None:
        await lock(bot)
        await bot.stop()
        clock.advance(3 * HOUR)

        await bot.start()
        await bot.runtime.sweep()

        assert "lock:production" not in bot.runtime.timers.armed
        reply = await bot.command("lock production my turn", user=SOMEONE)
        assert told_channel(slack, reply).startswith("🔒 <@UOTHER> locked `production`: my turn.")

    async def test_a_lock_without_a_duration_does_not_end_by_itself(
        self, bot: BotDriver, slack: FakeSlack, clock: FakeClock
    ) -> None:
        await bot.command("lock production", user=HOLDER)

        clock.advance(30 * 24 * HOUR)
        await bot.runtime.timers.run_due()

        assert await refused(bot, slack)


class TestUnlocking:
    async def test_the_holder_unlocks_and_others_may_deploy_again(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        await lock(bot)

        reply = await bot.command("unlock production", user=HOLDER)

        assert told_channel(slack, reply) == "🔓 <@UDEV> unlocked `production`."
        assert "lock:production" not in bot.runtime.timers.armed
        assert not await refused(bot, slack)

    async def test_someone_elses_lock_cannot_be_ended_by_a_non_approver(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        await lock(bot)

        reply = await bot.command("unlock production", user=SOMEONE)

        assert ack_text(reply).startswith(
            f"{LOCKED} Only <@UDEV> or an approver of `production` can unlock it; nothing was "
            "changed."
        )
        assert await refused(bot, slack)

    @pytest.mark.parametrize("approver", ["UAPPROVER1", "ULEAD1"])
    async def test_an_approver_may_end_someone_elses_lock_and_the_audit_log_says_whose(
        self, bot: BotDriver, slack: FakeSlack, approver: str
    ) -> None:
        """ULEAD1 approves through the S0LEADS user group."""
        await lock(bot)

        reply = await bot.command("unlock production", user=approver)

        assert told_channel(slack, reply) == (
            f"🔓 <@{approver}> unlocked `production` (<@UDEV>'s lock)."
        )
        entry = (await bot.runtime.audit.recent())[0]
        assert (entry.actor, entry.action, entry.outcome, entry.detail) == (
            approver,
            "/deploy unlock production",
            "unlocked the lock of UDEV",
            "production",
        )
        assert not await refused(bot, slack)

    async def test_a_lock_typed_where_the_bot_cannot_post_is_told_privately_with_why(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        slack.workspace.add_channel("CPRIVATE", "release-team", is_private=True)

        reply = await bot.command(
            "lock production release train for 2h", user=HOLDER, channel="CPRIVATE"
        )

        assert reply["body"] == ""
        private = slack.responses[-1]
        assert private["response_type"] == "ephemeral"
        assert private["text"].startswith("🔒 <@UDEV> locked `production` for 2h: release train.")
        assert "Only you see this" in private["text"]

    async def test_unlocking_an_unlocked_environment_says_so(self, bot: BotDriver) -> None:
        reply = await bot.command("unlock production", user=HOLDER)

        assert ack_text(reply).startswith("`production` is not locked; nothing was changed.")

    async def test_the_lock_and_unlock_are_in_the_audit_log(self, bot: BotDriver) -> None:
        await lock(bot)
        await bot.command("unlock production", user=HOLDER)

        entries = [(e.actor, e.action, e.outcome) for e in await bot.runtime.audit.recent()]
        assert entries[:2] == [
            (HOLDER, "/deploy unlock production", "unlocked"),
            (HOLDER, "/deploy lock production release train for 2h", "locked"),
        ]


class TestWhoMayLock:
    """Where only some people may ask for deploys, only they, the approvers and the
    rollbackers may lock: a lock stops everyone else's deploys."""

    @pytest.fixture
    def config(self, health: FakeHealth) -> Config:
        data = config_dict(health)
        data["environments"]["production"]["deployers"] = [HOLDER]
        return Config.model_validate(data)

    async def test_someone_who_may_not_deploy_there_is_refused_and_told_who_can(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        reply = await bot.command("lock production mine for 1h", user=SOMEONE)

        text = ack_text(reply)
        assert text.startswith("Only those who may deploy, approve or roll back in `production`")
        assert "<@UDEV>" in text
        assert "<@UAPPROVER1>" in text
        assert "Nothing was changed." in text
        assert "🔓 Not locked" in await status(bot)
        assert not [c for c in slack.of("chat.postMessage") if "locked" in str(c.get("text"))]

    async def test_a_deployer_and_an_approver_may_lock(self, bot: BotDriver) -> None:
        await lock(bot)
        assert "release train" in await status(bot)

        await bot.command("unlock production", user=HOLDER)
        await bot.command("lock production review for 1h", user="UAPPROVER1")

        assert "review" in await status(bot)
