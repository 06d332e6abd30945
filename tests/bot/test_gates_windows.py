"""Deploy windows and freezes through signed requests, the strict local Slack, moto and the
injected clock: refused outside the weekly windows (naming the next one) and during a freeze
(with its reason); `--break-glass "<reason>"` goes through with one more approval, loudly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.deploy.views import APPROVE_ACTION
from pipeline.kernel.config import Config
from store.deploy.models import DeploymentState
from tests.conftest import SERVICES, config_dict
from tests.driver import BotDriver, plan_cards, run_id_of
from tests.fakes.clock import FakeClock
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack

# Seed 001: Tuesday and Wednesday 14:00-18:00, Thursday 14:00-16:00; never Friday or Monday.
WINDOWS = ["tue-wed 14:00-18:00", "thu 14:00-16:00"]
FREEZE = {"from": "2026-12-20", "to": "2027-01-03", "reason": "Year-end freeze"}


@pytest.fixture
def config(health: FakeHealth) -> Config:
    data = config_dict(health)
    data["environments"]["production"]["schedule"] = {
        "timezone": "UTC",
        "windows": WINDOWS,
        "freezes": [FREEZE],
    }
    return Config.model_validate(data)


def go_to(clock: FakeClock, moment: str) -> None:
    """Move the clock on to `moment` ("2026-11-24 15:00", UTC); the suite starts on a Sunday."""
    target = datetime.fromisoformat(moment).replace(tzinfo=UTC)
    clock.advance((target - clock.now()).total_seconds())


def said(slack: FakeSlack) -> str:
    """The last reply the bot sent through a response_url, checked to be private."""
    reply = slack.responses[-1]
    assert reply["response_type"] == "ephemeral"
    return str(reply["text"])


def production(world: EcsWorld) -> dict[str, str]:
    return {s: world.task_definition("production", s) for s in SERVICES}


async def approve(bot: BotDriver, run_id: str, *users: str) -> None:
    for user in users:
        await bot.click(APPROVE_ACTION, run_id, user=user)


class TestWindows:
    @pytest.mark.parametrize(
        ("moment", "next_window"),
        [
            pytest.param("2026-11-22 09:00", "Tue 2026-11-24 14:00 UTC", id="sunday"),
            pytest.param("2026-11-24 13:59", "Tue 2026-11-24 14:00 UTC", id="tuesday-morning"),
            pytest.param("2026-11-25 18:00", "Thu 2026-11-26 14:00 UTC", id="wednesday-close"),
            pytest.param("2026-11-26 16:00", "Tue 2026-12-01 14:00 UTC", id="thursday-close"),
        ],
    )
    async def test_outside_the_windows_a_deploy_is_refused_naming_the_next_open_window(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        world: EcsWorld,
        clock: FakeClock,
        moment: str,
        next_window: str,
    ) -> None:
        go_to(clock, moment)
        before = production(world)

        await bot.command("production auth-svc", user="UDEV")

        text = said(slack)
        assert "outside the deploy windows (tue-wed 14:00-18:00, thu 14:00-16:00)" in text
        assert f"the next window opens {next_window}. Nothing was planned." in text
        assert '`--break-glass "<reason>"`' in text
        assert await bot.runtime.deploy.history(None) == []
        assert plan_cards(slack) == []
        assert production(world) == before

    @pytest.mark.parametrize("moment", ["2026-11-24 14:00", "2026-11-25 17:59"])
    async def test_inside_a_window_the_plan_card_needs_the_usual_approvals(
        self, bot: BotDriver, slack: FakeSlack, clock: FakeClock, moment: str
    ) -> None:
        go_to(clock, moment)

        await bot.command("production auth-svc", user="UDEV")

        card = plan_cards(slack)[-1]
        assert "approvals 0/2" in str(card["blocks"])
        assert "BREAK-GLASS" not in str(card["blocks"])

    async def test_a_window_in_another_time_zone_is_read_in_that_zone(
        self, bot: BotDriver, slack: FakeSlack, clock: FakeClock, health: FakeHealth
    ) -> None:
        """14:00 in New York is 19:00 UTC: inside its window, though outside the UTC one."""
        data = config_dict(health)
        data["environments"]["production"]["schedule"] = {
            "timezone": "America/New_York",
            "windows": WINDOWS,
        }
        bot.config = Config.model_validate(data)
        await bot.restart()
        go_to(clock, "2026-11-24 19:30")

        await bot.command("production auth-svc", user="UDEV")

        assert "approvals 0/2" in str(plan_cards(slack)[-1]["blocks"])

    async def test_the_status_of_an_environment_says_when_its_next_window_opens(
        self, bot: BotDriver
    ) -> None:
        reply = await bot.command("status production", user="UDEV")

        text = reply["body"]["text"]
        assert "Outside the deploy windows (tue-wed 14:00-18:00, thu 14:00-16:00, UTC)" in text
        assert "the next opens Tue 2026-11-24 14:00 UTC" in text

    async def test_a_window_that_closes_before_the_approvals_stops_the_run_unchanged(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld, clock: FakeClock
    ) -> None:
        """The checks run again just before the run starts."""
        go_to(clock, "2026-11-26 15:50")
        await bot.command("production auth-svc", user="UDEV")
        run_id = run_id_of(plan_cards(slack)[0])
        before = production(world)

        clock.advance(15 * 60)
        await approve(bot, run_id, "UAPPROVER1", "UAPPROVER2")

        run = await bot.runtime.runs.get(run_id)
        assert run.state is DeploymentState.ROLLED_BACK
        assert "Pre-flight check `window` failed" in (run.error or "")
        assert "the next window opens Tue 2026-12-01 14:00 UTC" in (run.error or "")
        assert production(world) == before


class TestFreezes:
    async def test_a_freeze_refuses_a_deploy_inside_a_window_with_its_reason(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld, clock: FakeClock
    ) -> None:
        go_to(clock, "2026-12-22 15:00")
        before = production(world)

        await bot.command("production auth-svc", user="UDEV")

        text = said(slack)
        assert "frozen 2026-12-20 to 2027-01-03: Year-end freeze." in text
        assert '`--break-glass "<reason>"`' in text
        assert await bot.runtime.deploy.history(None) == []
        assert production(world) == before

    async def test_the_next_open_window_named_is_after_the_freeze(
        self, bot: BotDriver, slack: FakeSlack, clock: FakeClock
    ) -> None:
        go_to(clock, "2026-12-19 10:00")

        await bot.command("production auth-svc", user="UDEV")

        assert "the next window opens Tue 2027-01-05 14:00 UTC" in said(slack)

    async def test_the_status_of_a_frozen_environment_shows_the_freeze(
        self, bot: BotDriver, clock: FakeClock
    ) -> None:
        go_to(clock, "2026-12-24 10:00")

        reply = await bot.command("status production", user="UDEV")

        assert "🧊 Frozen 2026-12-20 to 2027-01-03: Year-end freeze" in reply["body"]["text"]

    async def test_break_glass_goes_through_a_freeze(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld, clock: FakeClock
    ) -> None:
        go_to(clock, "2026-12-22 15:00")

        await bot.command('production auth-svc --break-glass "fraud is live"', user="UDEV")
        run_id = run_id_of(plan_cards(slack)[0])
        await approve(bot, run_id, "UAPPROVER1", "UAPPROVER2", "ULEAD1")

        assert (await bot.runtime.runs.get(run_id)).state is DeploymentState.SUCCEEDED
        assert world.version("production", "auth-svc") == "v1.3.0"


class TestBreakGlass:
    async def test_two_approvals_are_not_enough_and_a_third_starts_the_run(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld
    ) -> None:
        before = production(world)
        await bot.command('production auth-svc --break-glass "payments are down"', user="UDEV")
        run_id = run_id_of(plan_cards(slack)[0])

        await approve(bot, run_id, "UAPPROVER1", "UAPPROVER2")

        waiting = await bot.runtime.runs.get(run_id)
        assert waiting.state is DeploymentState.AWAITING_APPROVAL
        assert waiting.required_approvals == 3
        assert "approvals 2/3" in str(slack.of("chat.update")[-1]["blocks"])
        assert production(world) == before

        await approve(bot, run_id, "ULEAD1")

        assert (await bot.runtime.runs.get(run_id)).state is DeploymentState.SUCCEEDED
        assert world.version("production", "auth-svc") == "v1.3.0"

    async def test_the_card_says_so_loudly(self, bot: BotDriver, slack: FakeSlack) -> None:
        await bot.command('production auth-svc --break-glass "payments are down"', user="UDEV")

        card = str(plan_cards(slack)[0]["blocks"])
        assert (
            "🔥 *BREAK-GLASS*: payments are down · needs 3 approvals, one more than usual" in card
        )
        assert "approvals 0/3" in card

    async def test_the_channel_is_told_with_an_at_here(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        await bot.command('production auth-svc --break-glass "payments are down"', user="UDEV")

        run_id = run_id_of(plan_cards(slack)[0])
        [notice] = [m for m in plan_cards(slack) if "Break-glass deploy" in m["text"]]
        assert notice["channel"] == "CDEPLOYS"
        assert notice["text"].startswith("🔥 <!here> *Break-glass deploy* to production")
        assert "<@UDEV>: payments are down" in notice["text"]
        assert f"needs 3 approvals, one more than usual (deployment `{run_id}`)" in notice["text"]

    async def test_the_audit_log_keeps_the_reason(self, bot: BotDriver, slack: FakeSlack) -> None:
        await bot.command('production auth-svc --break-glass "payments are down"', user="UDEV")

        [entry] = await bot.runtime.audit.recent()
        assert entry.actor == "UDEV"
        assert entry.outcome == "planned (break-glass: payments are down)"
        assert entry.detail == run_id_of(plan_cards(slack)[0])

    async def test_inside_a_window_break_glass_still_needs_one_more_approval(
        self, bot: BotDriver, slack: FakeSlack, clock: FakeClock
    ) -> None:
        go_to(clock, "2026-11-24 15:00")

        await bot.command("production auth-svc --break-glass 'why not'", user="UDEV")

        run = await bot.runtime.runs.get(run_id_of(plan_cards(slack)[0]))
        assert (run.required_approvals, run.break_glass) == (3, "why not")

    @pytest.mark.parametrize(
        "text",
        [
            "production auth-svc --break-glass",
            'production auth-svc --break-glass ""',
            'production auth-svc --break-glass "   "',
            "production auth-svc --break-glass --dry-run",
        ],
    )
    async def test_break_glass_without_a_reason_is_refused_and_nothing_is_planned(
        self, bot: BotDriver, slack: FakeSlack, text: str
    ) -> None:
        reply = await bot.command(text, user="UDEV")

        body = reply["body"]
        assert body["response_type"] == "ephemeral"
        assert body["text"].startswith(
            '`--break-glass` needs a reason: `--break-glass "what is on fire"`.'
        )
        assert await bot.runtime.deploy.history(None) == []
        assert slack.of("chat.postMessage") == []

    async def test_break_glass_where_nobody_approves_is_refused(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        """Staging needs no approvals and has no approvers: there is nobody for the extra one."""
        await bot.command('staging auth-svc v1.4.0 --break-glass "just because"', user="UDEV")

        text = said(slack)
        assert "`staging` has no approvers" in text
        assert await bot.runtime.deploy.history(None) == []
