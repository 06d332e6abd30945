"""Canary releases through signed requests, the strict local Slack, moto (ECS, ELBv2,
CloudWatch), local health servers per colour and the injected clock."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from bot.canary.views import (
    CANARY_ABORT_ACTION,
    CANARY_HOLD_ACTION,
    CANARY_PROMOTE_ACTION,
    CANARY_RESUME_ACTION,
)
from bot.deploy.views import APPROVE_ACTION
from bot.settings import Settings
from pipeline.aws import BotoEcs
from pipeline.kernel.config import Config
from store.deploy.models import DeploymentState, StageStatus
from tests.conftest import config_dict
from tests.driver import BotDriver, plan_cards, raw_user_ids, run_id_of, thread
from tests.fakes.canary_world import CanaryWorld
from tests.fakes.clock import FakeClock
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack

CANARIES = ("auth-svc", "market-svc")
MINUTE = 60.0
BACKSTOP_S = 20


@pytest.fixture
def canary(world: EcsWorld) -> CanaryWorld:
    """auth-svc and market-svc are blue/green canaries in production, blue live on v1.2.0."""
    estate = CanaryWorld(world, "production")
    for name in CANARIES:
        svc = estate.add(name, "v1.2.0")
        estate.register(svc.target_groups["green"], 2)  # as ECS would once green runs
    return estate


@pytest.fixture
def config(health: FakeHealth, canary: CanaryWorld) -> Config:
    data = config_dict(health)
    prod = data["environments"]["production"]
    prod["rollbackers"] = ["UONCALL"]
    prod["canary"] = {
        "stages": [
            {"weight": 5, "bake": "5m"},
            {"weight": 50, "bake": "10m"},
            {"weight": 100, "bake": "15m"},
        ],
        "check_every": "1m",
        "min_requests": 50,
    }
    for name in CANARIES:
        colours = {c: health.url(f"{name}-{c}") for c in ("blue", "green")}
        data["services"][name]["canary"] = {"production": canary.canary_config(name, colours)}
        data["services"][name]["smoke"] = [{"path": "/health", "version_field": "version"}]
    return Config.model_validate(data)


def traffic(
    canary: CanaryWorld,
    clock: FakeClock,
    *,
    minutes: int = 40,
    errors: Callable[[int], float] = lambda minute: 0,
    requests: float = 1000,
    latency_s: float | None = None,
) -> None:
    """Steady requests on every green target group for the next `minutes`."""
    canary.put(
        [
            point
            for name in CANARIES
            for minute in range(minutes)
            for point in canary.datapoints(
                name,
                "green",
                requests=requests,
                errors=errors(minute),
                at=clock.now() + timedelta(minutes=minute, seconds=30),
                latency_s=latency_s,
            )
        ]
    )


async def request_and_approve(bot: BotDriver, slack: FakeSlack, *, wait: bool = True) -> str:
    await bot.command("production all", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[-1])
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2", wait_runs=wait)
    return run_id


def shifts(bot: BotDriver) -> Awaitable[list[tuple[str, str]]]:
    async def read() -> list[tuple[str, str]]:
        runs = await bot.runtime.deploy.history(None)
        events = await bot.runtime.deploy._deployments.events(runs[0].id)
        return [(e.service or "", e.detail or "") for e in events if e.stage == "traffic"]

    return read()


class Pause:
    """Holds green health requests once a condition is met, until the test lets them go."""

    def __init__(self, health: FakeHealth, when: Callable[[], bool]) -> None:
        self.reached = asyncio.Event()
        self.go = asyncio.Event()
        self._when = when
        health.before_answer = self._before

    async def _before(self, service: str, path: str) -> None:
        if service.endswith("-green") and not self.go.is_set() and self._when():
            self.reached.set()
            await self.go.wait()

    async def wait(self) -> None:
        await asyncio.wait_for(self.reached.wait(), BACKSTOP_S)


@pytest.fixture
def healthy_versions(health: FakeHealth) -> None:
    health.version_for = lambda service: "1.3.0" if service.endswith("-green") else "1.2.0"


@pytest.mark.usefixtures("healthy_versions")
class TestRelease:
    async def test_weights_go_5_50_100_with_the_configured_bakes_and_rolling_services_roll(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        canary: CanaryWorld,
        clock: FakeClock,
        world: EcsWorld,
    ) -> None:
        traffic(canary, clock)
        blue_td = world.task_definition("production", "auth-svc-blue")

        run_id = await request_and_approve(bot, slack)

        run = await bot.runtime.runs.get(run_id)
        assert run.state is DeploymentState.SUCCEEDED
        assert [(s.weight, s.status, s.elapsed_s) for s in run.stages] == [
            (5, StageStatus.PASSED, 5 * MINUTE),
            (50, StageStatus.PASSED, 10 * MINUTE),
            (100, StageStatus.PASSED, 15 * MINUTE),
        ]
        seen = [d for s, d in await shifts(bot) if s == "auth-svc"]
        assert seen == [
            "5% on green, 95% on blue",
            "50% on green, 50% on blue",
            "100% on green, 0% on blue",
        ]
        assert canary.weights("auth-svc") == {"blue": 0, "green": 100}
        assert world.version("production", "auth-svc-green", container="auth-svc") == "v1.3.0"
        assert world.task_definition("production", "auth-svc-blue") == blue_td
        assert world.version("production", "api-gateway") == "v1.3.0"
        record = (await bot.command(f"status {run_id} --json", user="UDEV"))["body"]["text"]
        assert '"rollout_stages"' in record
        assert '"stage": "progressive"' in record

    async def test_a_2_percent_5xx_ratio_at_50_percent_flips_every_service_back(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        canary: CanaryWorld,
        clock: FakeClock,
        world: EcsWorld,
    ) -> None:
        traffic(canary, clock, errors=lambda minute: 20 if minute >= 5 else 0)

        run_id = await request_and_approve(bot, slack)

        run = await bot.runtime.runs.get(run_id)
        assert run.state is DeploymentState.ROLLED_BACK
        assert "50% stage failed" in (run.error or "")
        assert "5xx 2.0%" in (run.error or "")
        for name in CANARIES:
            assert canary.weights(name) == {"blue": 100, "green": 0}
        assert [s.status for s in run.stages] == [StageStatus.PASSED, StageStatus.FAILED]
        card = str(slack.of("chat.update")[-1]["blocks"])
        assert "50% stage failed" in card
        green = world.client.describe_services(
            cluster="skillancer-production", services=["auth-svc-green"]
        )["services"][0]
        assert green["desiredCount"] == 0

    async def test_under_min_requests_an_error_is_no_verdict(
        self, bot: BotDriver, slack: FakeSlack, canary: CanaryWorld, clock: FakeClock
    ) -> None:
        traffic(canary, clock, requests=3, errors=lambda minute: 1 if minute < 1 else 0)

        run_id = await request_and_approve(bot, slack)

        assert (await bot.runtime.runs.get(run_id)).state is DeploymentState.SUCCEEDED

    async def test_no_data_is_never_a_pass_and_too_long_without_it_fails_the_stage(
        self, bot: BotDriver, slack: FakeSlack, canary: CanaryWorld
    ) -> None:
        run_id = await request_and_approve(bot, slack)

        run = await bot.runtime.runs.get(run_id)
        assert run.state is DeploymentState.ROLLED_BACK
        assert "no CloudWatch data" in (run.error or "")
        assert canary.weights("auth-svc") == {"blue": 100, "green": 0}

    async def test_a_failing_smoke_test_flips_back(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        canary: CanaryWorld,
        clock: FakeClock,
        health: FakeHealth,
    ) -> None:
        traffic(canary, clock)
        health.version_for = lambda service: "1.2.0"

        run_id = await request_and_approve(bot, slack)

        run = await bot.runtime.runs.get(run_id)
        assert run.state is DeploymentState.ROLLED_BACK
        assert "Smoke tests failed" in (run.error or "")
        assert "says version '1.2.0', not v1.3.0" in (run.error or "")
        assert canary.weights("market-svc") == {"blue": 100, "green": 0}


@pytest.mark.usefixtures("healthy_versions")
class TestSteering:
    async def _at_50(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        canary: CanaryWorld,
        clock: FakeClock,
        health: FakeHealth,
    ) -> tuple[str, Pause]:
        traffic(canary, clock)
        pause = Pause(health, lambda: canary.weights("auth-svc")["green"] == 50)
        run_id = await request_and_approve(bot, slack, wait=False)
        await pause.wait()
        return run_id, pause

    async def test_promote_ends_the_bake_now(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        canary: CanaryWorld,
        clock: FakeClock,
        health: FakeHealth,
    ) -> None:
        run_id, pause = await self._at_50(bot, slack, canary, clock, health)

        await bot.click(CANARY_PROMOTE_ACTION, run_id, user="UONCALL", wait_runs=False)
        pause.go.set()
        await bot.settle()

        run = await bot.runtime.runs.get(run_id)
        assert run.state is DeploymentState.SUCCEEDED
        assert run.stages[1].status is StageStatus.PROMOTED
        assert run.stages[1].promoted_by == "UONCALL"
        assert run.stages[1].elapsed_s < 10 * MINUTE
        assert "• progressive promoted: by <@UONCALL>" in thread(slack)
        assert raw_user_ids(thread(slack)) == []

    async def test_hold_stops_the_clock_and_resume_goes_on_with_what_was_left(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        canary: CanaryWorld,
        clock: FakeClock,
        health: FakeHealth,
    ) -> None:
        run_id, pause = await self._at_50(bot, slack, canary, clock, health)

        await bot.click(CANARY_HOLD_ACTION, run_id, user="UAPPROVER1", wait_runs=False)
        held_card = str(slack.of("chat.update")[-1]["blocks"])
        pause.go.set()
        samples = []
        for _ in range(30):  # the held run must not move on, in real time or in bake time
            await asyncio.sleep(0.01)
            held = await bot.runtime.runs.get(run_id)
            samples.append((held.state, held.stages[1].status, held.stages[1].elapsed_s))
        await bot.click(CANARY_RESUME_ACTION, run_id, user="UAPPROVER1")

        run = await bot.runtime.runs.get(run_id)
        assert "⏸️ *Held* by <@UAPPROVER1>" in held_card
        assert CANARY_RESUME_ACTION in held_card
        assert len(set(samples)) == 1
        assert samples[0][:2] == (DeploymentState.RUNNING, StageStatus.HELD)
        assert samples[0][2] < 10 * MINUTE
        assert run.state is DeploymentState.SUCCEEDED
        assert run.stages[1].elapsed_s == 10 * MINUTE
        said = thread(slack)
        assert "• canary held the 50% stage: by <@UAPPROVER1>" in said
        assert "• canary resumed the 50% stage: by <@UAPPROVER1>" in said
        assert raw_user_ids(said) == []

    async def test_abort_flips_back_now(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        canary: CanaryWorld,
        clock: FakeClock,
        health: FakeHealth,
    ) -> None:
        run_id, pause = await self._at_50(bot, slack, canary, clock, health)

        await bot.click(CANARY_ABORT_ACTION, run_id, user="UONCALL", wait_runs=False)
        pause.go.set()
        await bot.settle()

        run = await bot.runtime.runs.get(run_id)
        assert run.state is DeploymentState.ROLLED_BACK
        assert run.error == "UONCALL aborted it at the 50% stage"
        assert canary.weights("auth-svc") == {"blue": 100, "green": 0}
        card = str(slack.of("chat.update")[-1]["blocks"])
        assert "Reason: <@UONCALL> aborted it at the 50% stage" in card
        assert "• canary aborted at the 50% stage: by <@UONCALL>" in thread(slack)
        assert raw_user_ids([card, *thread(slack)]) == []

    async def test_an_abort_tells_the_channel_mentioning_the_requester(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        canary: CanaryWorld,
        clock: FakeClock,
        health: FakeHealth,
    ) -> None:
        run_id, pause = await self._at_50(bot, slack, canary, clock, health)

        await bot.click(CANARY_ABORT_ACTION, run_id, user="UONCALL", wait_runs=False)
        pause.go.set()
        await bot.settle()

        [loud] = [c for c in slack.of("chat.postMessage") if c.get("reply_broadcast")]
        assert loud["text"].startswith("<@UDEV> 🚨 Production deployment FAILED")
        assert "Reason: <@UONCALL> aborted it at the 50% stage" in loud["text"]

    @pytest.mark.parametrize("action", [CANARY_PROMOTE_ACTION, CANARY_HOLD_ACTION])
    async def test_a_steer_after_an_abort_is_refused_saying_who_is_aborting_and_changes_nothing(
        self,
        action: str,
        bot: BotDriver,
        slack: FakeSlack,
        canary: CanaryWorld,
        clock: FakeClock,
        health: FakeHealth,
    ) -> None:
        """Issue 16: a Promote clicked while an Abort was carried out was accepted."""
        run_id, pause = await self._at_50(bot, slack, canary, clock, health)
        await bot.click(CANARY_ABORT_ACTION, run_id, user="UONCALL", wait_runs=False)

        await bot.click(action, run_id, user="UAPPROVER1", wait_runs=False)
        said = slack.responses[-1]
        aborting = await bot.runtime.runs.get(run_id)
        pause.go.set()
        await bot.settle()

        assert said["response_type"] == "ephemeral"
        # On a loaded machine the Abort's rollback may have ended before the click is read:
        # either way the click is refused, naming who aborted.
        assert re.search(r"(is being|was) aborted by <@UONCALL>", said["text"])
        assert "your click changed nothing" in said["text"]
        assert aborting.stages[1].promoted_by is None
        assert aborting.stages[1].held_by is None
        run = await bot.runtime.runs.get(run_id)
        assert run.state is DeploymentState.ROLLED_BACK
        assert run.stages[1].status is StageStatus.ABORTED
        assert run.stages[1].promoted_by is None
        assert canary.weights("auth-svc") == {"blue": 100, "green": 0}

    async def test_outsiders_cannot_steer_a_canary(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        canary: CanaryWorld,
        clock: FakeClock,
        health: FakeHealth,
    ) -> None:
        run_id, pause = await self._at_50(bot, slack, canary, clock, health)

        for action in (CANARY_PROMOTE_ACTION, CANARY_HOLD_ACTION, CANARY_ABORT_ACTION):
            await bot.click(action, run_id, user="UOUTSIDER", wait_runs=False)
            assert "Only approvers and rollbackers of `production`" in slack.responses[-1]["text"]
        pause.go.set()
        await bot.settle()

        run = await bot.runtime.runs.get(run_id)
        assert run.state is DeploymentState.SUCCEEDED
        assert run.stages[1].status is StageStatus.PASSED


@pytest.mark.usefixtures("healthy_versions")
class TestAfterwards:
    async def test_a_rollback_inside_the_window_is_a_flip_without_a_new_revision(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        canary: CanaryWorld,
        clock: FakeClock,
        world: EcsWorld,
    ) -> None:
        traffic(canary, clock)
        await request_and_approve(bot, slack)
        revisions = world.client.list_task_definitions()["taskDefinitionArns"]

        await bot.command("production auth-svc -y errors", command="/rollback", user="UONCALL")

        assert canary.weights("auth-svc") == {"blue": 100, "green": 0}
        assert canary.weights("market-svc") == {"blue": 0, "green": 100}
        assert world.client.list_task_definitions()["taskDefinitionArns"] == revisions

    async def test_the_window_closing_scales_the_old_colours_to_0(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        canary: CanaryWorld,
        clock: FakeClock,
        world: EcsWorld,
    ) -> None:
        traffic(canary, clock)
        run_id = await request_and_approve(bot, slack)

        clock.advance(61 * MINUTE)
        await bot.runtime.timers.run_due()
        await bot.settle()

        for name in CANARIES:
            blue = world.client.describe_services(
                cluster="skillancer-production", services=[f"{name}-blue"]
            )["services"][0]
            assert blue["desiredCount"] == 0
        run = await bot.runtime.runs.get(run_id)
        assert run.old_colours_retired_at is not None
        assert "Old colours scaled to 0" in str(slack.of("chat.update")[-1]["blocks"])

    async def test_a_bot_stopped_mid_bake_resumes_with_the_bake_time_left(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        canary: CanaryWorld,
        clock: FakeClock,
        health: FakeHealth,
    ) -> None:
        traffic(canary, clock)
        pause = Pause(
            health,
            lambda: canary.weights("auth-svc")["green"] == 50 and clock.now().minute >= 10,
        )
        run_id = await request_and_approve(bot, slack, wait=False)
        await pause.wait()
        used = (await bot.runtime.runs.get(run_id)).stages[1].elapsed_s

        await bot.stop()
        pause.go.set()
        await bot.start()
        await bot.settle()

        run = await bot.runtime.runs.get(run_id)
        assert 0 < used < 10 * MINUTE
        assert run.state is DeploymentState.SUCCEEDED
        assert run.stages[1].elapsed_s == 10 * MINUTE
        seen = [d for s, d in await shifts(bot) if s == "auth-svc"]
        assert seen.count("50% on green, 50% on blue") == 1


class TestTheCard:
    async def test_the_card_shows_stage_figures_and_a_slow_warning_while_it_bakes(
        self,
        bot: BotDriver,
        slack: FakeSlack,
        canary: CanaryWorld,
        clock: FakeClock,
        health: FakeHealth,
    ) -> None:
        health.version_for = lambda service: "1.3.0"
        traffic(canary, clock, latency_s=6.2)
        pause = Pause(
            health,
            lambda: canary.weights("auth-svc")["green"] == 50 and clock.now().minute >= 8,
        )
        run_id = await request_and_approve(bot, slack, wait=False)
        await pause.wait()
        await asyncio.sleep(0.05)
        run = await bot.runtime.runs.get(run_id)
        card = await _card_of(bot, slack, run_id, run.message_ts)
        pause.go.set()
        await bot.settle()

        assert run.state is DeploymentState.RUNNING
        assert "🐤 *Canary* stage 2/3: 50% of the traffic" in card
        assert "`auth-svc` → green: health ✅" in card
        assert "⚠️ slow 6.2s" in card

    async def test_the_card_is_redrawn_at_most_every_few_seconds_whatever_the_cadence(
        self,
        settings: Settings,
        health: FakeHealth,
        canary: CanaryWorld,
        clock: FakeClock,
        slack: FakeSlack,
        config: Config,
    ) -> None:
        """Checks every second for three minutes: 180 ticks, but a redraw at most every 5 s."""
        health.version_for = lambda service: "1.3.0"
        traffic(canary, clock, minutes=10)
        data = config.model_dump(by_alias=True)
        data["environments"]["production"]["canary"].update(
            check_every=1.0,
            stages=[{"weight": w, "bake": 60.0} for w in (5, 50, 100)],
        )
        bot = BotDriver(
            settings=settings,
            config=Config.model_validate(data),
            clock=clock,
            ecs=BotoEcs(),
            slack=slack,
        )
        await bot.start()
        try:
            run_id = await request_and_approve(bot, slack)
            run = await bot.runtime.runs.get(run_id)
        finally:
            await bot.stop()

        redraws = [u for u in slack.of("chat.update") if u["ts"] == run.message_ts]
        assert run.state is DeploymentState.SUCCEEDED
        # Each stage: its start and first check drawn at once, then one per 5 s of bake; and
        # eight other changes (two approvals, start, three stage changes, the end, and the
        # production watch's "watching until" line after it). Redraws asked for while one is in
        # flight may merge into one, so this is the most there are.
        assert len(redraws) <= 3 * (2 + 60 / 5) + 8
        assert "watching until" in str(redraws[-1])

    async def test_stages_of_seconds_show_their_checks_and_a_moving_countdown(
        self,
        settings: Settings,
        health: FakeHealth,
        canary: CanaryWorld,
        slack: FakeSlack,
        config: Config,
    ) -> None:
        """The sandbox's canary (stages of 3, 5 and 3 seconds, a check every second): each
        stage's card shows its figures before the stage ends, and the time left goes down.
        Each card update lands before time moves on, as it does against a quick Slack."""
        clock = DrawnClock()
        health.version_for = lambda service: "1.3.0"
        traffic(canary, clock, minutes=10)
        data = config.model_dump(by_alias=True)
        data["environments"]["production"]["canary"].update(
            check_every=1.0,
            stages=[
                {"weight": 5, "bake": 3.0},
                {"weight": 50, "bake": 5.0},
                {"weight": 100, "bake": 3.0},
            ],
            min_requests=0,
        )
        bot = BotDriver(
            settings=settings,
            config=Config.model_validate(data),
            clock=clock,
            ecs=BotoEcs(),
            slack=slack,
        )
        await bot.start()
        clock.drawn = bot.runtime.background.wait_idle
        try:
            run_id = await request_and_approve(bot, slack)
            run = await bot.runtime.runs.get(run_id)
        finally:
            await bot.stop()

        drawn = [str(u["blocks"]) for u in slack.of("chat.update") if u["ts"] == run.message_ts]
        assert run.state is DeploymentState.SUCCEEDED
        for stage, weight in ((1, 5), (2, 50), (3, 100)):
            during = [d for d in drawn if f"stage {stage}/3: {weight}% of the traffic" in d]
            baking = [d for d in during if "· 0s of bake left" not in d]
            assert any("`auth-svc` → green: health ✅" in d for d in baking), stage
        first = [d for d in drawn if "stage 1/3: 5% of the traffic" in d]
        left = {found.group(1) for d in first if (found := re.search(r"· (\w+) of bake", d))}
        assert {"3s", "2s", "1s"} <= left, left


class DrawnClock(FakeClock):
    """Virtual time that lets every pending card update land before a run's sleep."""

    def __init__(self) -> None:
        super().__init__()
        self.drawn: Callable[[], Awaitable[None]] | None = None

    async def sleep(self, seconds: float) -> None:
        task = asyncio.current_task()
        if self.drawn is not None and task is not None and not task.get_name().startswith("card:"):
            await self.drawn()
        await super().sleep(seconds)


async def _card_of(bot: BotDriver, slack: FakeSlack, run_id: str, ts: str | None) -> str:
    run = await bot.runtime.runs.get(run_id)
    assert run.channel_id is not None
    [card] = [m for m in slack.workspace.channel(run.channel_id).messages if m.ts == ts]
    return str(card.blocks)


class TestBadSetup:
    async def test_a_listener_forwarding_elsewhere_is_refused_before_any_card(
        self, bot: BotDriver, slack: FakeSlack, canary: CanaryWorld
    ) -> None:
        svc = canary.services["auth-svc"]
        other = canary.elb.create_target_group(
            Name="stray", Protocol="HTTP", Port=80, VpcId=canary.vpc, TargetType="ip"
        )["TargetGroups"][0]["TargetGroupArn"]
        canary.elb.modify_listener(
            ListenerArn=svc.listener,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": other}],
        )

        await bot.command("production auth-svc", user="UDEV")

        said: dict[str, Any] = slack.responses[-1]
        assert said["response_type"] == "ephemeral"
        assert "not to exactly its blue and green target groups" in said["text"]
        assert plan_cards(slack) == []

    def test_stage_lists_that_do_not_climb_to_100_are_refused(self, health: FakeHealth) -> None:
        data = config_dict(health)
        for stages, problem in (
            ([{"weight": 50, "bake": "1m"}, {"weight": 5, "bake": "1m"}], "must go up"),
            ([{"weight": 5, "bake": "1m"}, {"weight": 50, "bake": "1m"}], "must end at weight 100"),
            ([{"weight": 0, "bake": "1m"}, {"weight": 100, "bake": "1m"}], "greater than or equal"),
        ):
            data["environments"]["production"]["canary"] = {"stages": stages}
            with pytest.raises(ValueError, match=problem):
                Config.model_validate(data)
