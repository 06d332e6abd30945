"""The post-deploy watch end to end: a production deploy through signed requests, the strict
local Slack, moto's ECS and CloudWatch (metrics put with put_metric_data), and the injected
clock that drives the watch's timers."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from botocore.config import Config as BotoConfig

from bot.deploy.views import APPROVE_ACTION
from bot.settings import Settings
from bot.watch.adapter import ALERT_EVENT
from bot.watch.views import WATCH_ROLLBACK_ACTION
from pipeline.aws import BotoEcs, calls
from pipeline.kernel.config import Config
from store.deploy.models import DeploymentState, RunKind
from store.watch import WatchAlert, Watches
from tests.conftest import BotFactory, config_dict
from tests.driver import BotDriver, plan_cards, run_id_of
from tests.fakes.aws_proxy import EcsProxy
from tests.fakes.clock import FakeClock
from tests.fakes.ecs_world import EcsWorld, aws_client
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack

ONCALL = "UONCALL"
CHANNEL = "CDEPLOYS"
MINUTE = 60.0
MINUTE_S = timedelta(seconds=MINUTE)
LB = "app/prod-alb/50dc6c495c0c9188"
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/73e2d6bc24d8a067"
TG_DIMENSION = "targetgroup/api/73e2d6bc24d8a067"


@pytest.fixture
def config(health: FakeHealth) -> Config:
    data = config_dict(health)
    production = data["environments"]["production"]
    production["rollbackers"] = [ONCALL]
    production["watch"] = {
        "period": "2h",
        "target_groups": {"api-gateway": {"load_balancer": LB, "target_group": TG}},
    }
    return Config.model_validate(data)


def put(
    clock: FakeClock,
    *,
    at: datetime | None = None,
    endpoint_url: str | None = None,
    **series: float,
) -> None:
    """One minute of api-gateway's metrics, at the clock's time (or `at`), into moto's
    CloudWatch (in this process, or the server at `endpoint_url`)."""
    cloudwatch = aws_client("cloudwatch", endpoint_url=endpoint_url)
    names = {
        "requests": ("AWS/ApplicationELB", "RequestCount"),
        "errors": ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"),
        "latency": ("AWS/ApplicationELB", "TargetResponseTime"),
        "cpu": ("AWS/ECS", "CPUUtilization"),
        "memory": ("AWS/ECS", "MemoryUtilization"),
    }
    dims = {
        "AWS/ApplicationELB": {"TargetGroup": TG_DIMENSION, "LoadBalancer": LB},
        "AWS/ECS": {"ClusterName": "skillancer-production", "ServiceName": "api-gateway"},
    }
    data: dict[str, list[dict[str, Any]]] = {}
    for key, value in series.items():
        namespace, name = names[key]
        data.setdefault(namespace, []).append(
            {
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims[namespace].items()],
                "Timestamp": at or clock.now(),
                "Value": value,
            }
        )
    for namespace, datapoints in data.items():
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=datapoints)


async def minutes_pass(
    bot: BotDriver, clock: FakeClock, n: int, *, endpoint_url: str | None = None, **series: float
) -> None:
    """`n` minutes of the given metrics, each followed by whatever timers came due."""
    for _ in range(n):
        put(clock, endpoint_url=endpoint_url, **series)
        clock.advance(MINUTE)
        await bot.runtime.timers.run_due()
        await bot.settle()


HEALTHY = {"requests": 1000, "errors": 2, "latency": 0.2, "cpu": 30, "memory": 40}


async def deploy_production(bot: BotDriver, slack: FakeSlack) -> str:
    await bot.command("production api-gateway", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[-1])
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2")
    assert (await bot.runtime.runs.get(run_id)).state is DeploymentState.SUCCEEDED
    return run_id


async def card_of(bot: BotDriver, slack: FakeSlack, run_id: str) -> str:
    run = await bot.runtime.runs.get(run_id)
    assert run.channel_id is not None
    [card] = [m for m in slack.workspace.channel(run.channel_id).messages if m.ts == run.message_ts]
    return str(card.blocks)


def alerts(slack: FakeSlack) -> list[dict[str, Any]]:
    """Every alert the bot sent (a refused call included)."""
    return [c for c in slack.of("chat.postMessage") if "breached after deployment" in c["text"]]


def kept_alerts(slack: FakeSlack) -> list[str]:
    """The alerts Slack took and shows."""
    return [
        m.text
        for ch in slack.workspace.channels.values()
        for m in ch.messages
        if "breached after deployment" in m.text
    ]


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in message.get("blocks") or [] if b["type"] == "actions" for e in b["elements"]]


async def test_a_healthy_deploy_is_watched_then_the_card_says_no_breach(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    run_id = await deploy_production(bot, slack)

    await minutes_pass(bot, clock, 3, **HEALTHY)
    during = await card_of(bot, slack, run_id)
    for _ in range(24):
        await minutes_pass(bot, clock, 5, **HEALTHY)

    assert "👀 `api-gateway` watching until" in during
    assert "5xx 0.2% (&gt; 5.0% for 5m)" in during or "5xx 0.2% (> 5.0% for 5m)" in during
    assert "👀 `api-gateway` watch ended: no breach" in await card_of(bot, slack, run_id)
    assert alerts(slack) == []


async def test_sustained_5xx_alerts_once_in_the_thread_and_the_channel_naming_the_people(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    run_id = await deploy_production(bot, slack)

    await minutes_pass(bot, clock, 12, **{**HEALTHY, "errors": 120})

    [alert] = alerts(slack)
    assert alert["reply_broadcast"] is True
    assert alert["thread_ts"] == (await bot.runtime.runs.get(run_id)).message_ts
    for person in ("<@UDEV>", "<@UAPPROVER1>", "<@UAPPROVER2>"):
        assert person in alert["text"]
    assert "5xx 12.0% (> 5.0% for 5m)" in alert["text"]
    assert [b["text"]["text"] for b in buttons(alert)] == ["Roll back", "Open incident"]
    assert "confirm" in buttons(alert)[0]


async def test_the_alerts_roll_back_button_rolls_back_for_a_rollbacker(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock, world: EcsWorld
) -> None:
    run_id = await deploy_production(bot, slack)
    await minutes_pass(bot, clock, 6, **{**HEALTHY, "errors": 300})
    [alert] = alerts(slack)
    roll_back = buttons(alert)[0]

    await bot.click(roll_back["action_id"], roll_back["value"], user=ONCALL)

    assert roll_back["action_id"] == WATCH_ROLLBACK_ACTION
    assert world.version("production", "api-gateway") == "v1.2.0"
    deploy = await bot.runtime.runs.get(run_id)
    assert deploy.reverted_by is not None
    rollback = await bot.runtime.runs.get(deploy.reverted_by)
    assert (rollback.kind, rollback.state) == (RunKind.ROLLBACK, DeploymentState.SUCCEEDED)


async def test_a_spike_shorter_than_its_duration_does_not_alert(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    await deploy_production(bot, slack)

    await minutes_pass(bot, clock, 6, **HEALTHY)
    await minutes_pass(bot, clock, 3, **{**HEALTHY, "errors": 500})
    await minutes_pass(bot, clock, 10, **HEALTHY)

    assert alerts(slack) == []


async def test_slow_responses_alert_after_ten_minutes(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    await deploy_production(bot, slack)

    await minutes_pass(bot, clock, 9, **{**HEALTHY, "latency": 2.6})
    before = alerts(slack)
    await minutes_pass(bot, clock, 2, **{**HEALTHY, "latency": 2.6})

    assert before == []
    [alert] = alerts(slack)
    assert "avg response 2.60s (> 2.00s for 10m)" in alert["text"]


async def test_a_breach_alerts_again_only_after_it_recovered(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    await deploy_production(bot, slack)
    bad = {**HEALTHY, "errors": 200}

    await minutes_pass(bot, clock, 15, **bad)
    once = len(alerts(slack))
    await minutes_pass(bot, clock, 6, **HEALTHY)
    await minutes_pass(bot, clock, 6, **bad)

    assert (once, len(alerts(slack))) == (1, 2)


async def test_an_alert_slack_refused_is_posted_once_after_a_restart(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    await deploy_production(bot, slack)
    await minutes_pass(bot, clock, 4, **{**HEALTHY, "errors": 200})
    slack.fail_next("chat.postMessage", "internal_error")

    await minutes_pass(bot, clock, 1, **{**HEALTHY, "errors": 200})
    refused = kept_alerts(slack)
    await bot.restart()
    await minutes_pass(bot, clock, 5, **{**HEALTHY, "errors": 200})

    assert refused == []
    assert len(kept_alerts(slack)) == 1


def shown_alerts(slack: FakeSlack, run_ts: str | None) -> tuple[list[str], list[str]]:
    """The ts of the alerts in the card's thread, and of those in the channel's history (as
    conversations.replies and conversations.history show them), oldest first."""
    thread = [
        m.ts
        for m in slack.workspace.replies(CHANNEL, run_ts or "")
        if "breached after deployment" in m.text
    ]
    channel = [
        m.ts for m in slack.workspace.history(CHANNEL) if "breached after deployment" in m.text
    ]
    return thread, sorted(channel)


async def stored_alerts(bot: BotDriver, run_id: str) -> list[WatchAlert]:
    return await Watches(bot.runtime.store).alerts(f"{run_id}:api-gateway")


async def test_each_alert_names_its_watch_signals_and_number_in_its_metadata(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    run_id = await deploy_production(bot, slack)
    bad = {**HEALTHY, "errors": 200}

    await minutes_pass(bot, clock, 6, **bad)
    await minutes_pass(bot, clock, 6, **HEALTHY)
    await minutes_pass(bot, clock, 6, **bad)

    payloads = [a["metadata"]["event_payload"] for a in alerts(slack)]
    assert {a["metadata"]["event_type"] for a in alerts(slack)} == {ALERT_EVENT}
    watch = f"{run_id}:api-gateway"
    assert payloads == [
        {"key": f"{watch}#1", "watch": watch, "signals": "5xx", "number": 1, "kind": "breach"},
        {"key": f"{watch}#2", "watch": watch, "signals": "5xx", "number": 2, "kind": "breach"},
    ]
    thread, channel = shown_alerts(slack, (await bot.runtime.runs.get(run_id)).message_ts)
    assert thread == channel
    assert [a.ts for a in await stored_alerts(bot, run_id)] == thread


async def test_an_alert_slack_took_without_answering_is_found_not_posted_again(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    """Slack posts the alert and its answer is lost (HTTP 500): the next try finds it."""
    run_id = await deploy_production(bot, slack)
    bad = {**HEALTHY, "errors": 200}
    await minutes_pass(bot, clock, 4, **bad)
    slack.accept_then_fail("chat.postMessage")

    await minutes_pass(bot, clock, 1, **bad)
    [unconfirmed] = await stored_alerts(bot, run_id)
    await minutes_pass(bot, clock, 5, **bad)

    assert (unconfirmed.tried_at, unconfirmed.posted_at) == (clock.now() - 5 * MINUTE_S, None)
    thread, channel = shown_alerts(slack, (await bot.runtime.runs.get(run_id)).message_ts)
    assert len(thread) == len(channel) == 1
    [stored] = await stored_alerts(bot, run_id)
    assert stored.ts == thread[0]
    assert stored.posted_at is not None


async def test_an_alert_unconfirmed_is_not_posted_again_while_the_channel_cannot_be_read(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    run_id = await deploy_production(bot, slack)
    bad = {**HEALTHY, "errors": 200}
    await minutes_pass(bot, clock, 4, **bad)
    slack.accept_then_fail("chat.postMessage")
    await minutes_pass(bot, clock, 1, **bad)
    slack.fail_next("conversations.history", "internal_error")

    await minutes_pass(bot, clock, 1, **bad)
    unread = await stored_alerts(bot, run_id)
    await minutes_pass(bot, clock, 1, **bad)

    assert [a.posted_at for a in unread] == [None]
    assert len(kept_alerts(slack)) == 1
    assert (await stored_alerts(bot, run_id))[0].posted_at is not None


async def test_the_watch_goes_on_after_a_restart_without_repeating_an_alert(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    run_id = await deploy_production(bot, slack)
    await minutes_pass(bot, clock, 7, **{**HEALTHY, "errors": 200})

    await bot.restart()
    await minutes_pass(bot, clock, 5, **{**HEALTHY, "errors": 200})

    assert len(alerts(slack)) == 1
    assert (await bot.runtime.watch.arm_timers()) == 1
    assert "watching until" in await card_of(bot, slack, run_id)


async def test_with_rollback_on_a_breach_inside_the_window_rolls_back_at_once(
    settings: Settings,
    config: Config,
    clock: FakeClock,
    world: EcsWorld,
    slack: FakeSlack,
) -> None:
    watch = config.environments["production"].watch.model_copy(update={"rollback": True})
    production = config.environments["production"].model_copy(update={"watch": watch})
    config_with_rollback = config.model_copy(
        update={"environments": {**config.environments, "production": production}}
    )
    bot = BotDriver(
        settings=settings, config=config_with_rollback, clock=clock, ecs=BotoEcs(), slack=slack
    )
    await bot.start()
    try:
        run_id = await deploy_production(bot, slack)

        await minutes_pass(bot, clock, 6, **{**HEALTHY, "errors": 300})

        [alert] = alerts(slack)
        deploy = await bot.runtime.runs.get(run_id)
        assert deploy.reverted_by is not None
        assert f"rolls it back at once (rollback `{deploy.reverted_by}`)" in alert["text"]
        assert "5xx 30.0%" in alert["text"]
        assert buttons(alert) == []
        assert world.version("production", "api-gateway") == "v1.2.0"
        rollback = await bot.runtime.runs.get(deploy.reverted_by)
        assert "5xx 30.0%" in (rollback.reason or "")
        assert "watch ended: rolled back" in await card_of(bot, slack, run_id)
    finally:
        await bot.stop()


async def test_a_service_without_a_target_group_is_watched_on_cpu_and_memory_and_says_so(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    await bot.command("production auth-svc", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[-1])
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2")

    await minutes_pass(bot, clock, 2)

    card = await card_of(bot, slack, run_id)
    assert "👀 `auth-svc` watching until" in card
    assert "(no target group: CPU and memory only)" in card
    assert "5xx" not in card


async def test_a_run_that_succeeded_unwatched_is_watched_after_a_restart(
    settings: Settings, config: Config, clock: FakeClock, world: EcsWorld, slack: FakeSlack
) -> None:
    """As when the bot dies between a run's success and the start of its watch."""
    production = config.environments["production"]
    off = production.model_copy(
        update={"watch": production.watch.model_copy(update={"period_s": 0.0})}
    )
    unwatched = config.model_copy(
        update={"environments": {**config.environments, "production": off}}
    )
    first = BotDriver(settings=settings, config=unwatched, clock=clock, ecs=BotoEcs(), slack=slack)
    await first.start()
    run_id = await deploy_production(first, slack)
    await first.stop()

    bot = BotDriver(settings=settings, config=config, clock=clock, ecs=BotoEcs(), slack=slack)
    await bot.start()
    try:
        await minutes_pass(bot, clock, 6, **{**HEALTHY, "errors": 200})

        assert len(alerts(slack)) == 1
        assert "👀 `api-gateway` watching until" in await card_of(bot, slack, run_id)
    finally:
        await bot.stop()


def no_data_messages(slack: FakeSlack) -> list[str]:
    return [
        c["text"] for c in slack.of("chat.postMessage") if "no data from CloudWatch" in c["text"]
    ]


async def test_no_data_for_a_whole_duration_is_said_once_for_the_whole_watch(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    """No traffic at all (the target group's series are not there): CPU and memory only."""
    run_id = await deploy_production(bot, slack)

    await minutes_pass(bot, clock, 12, cpu=30, memory=40)
    said = no_data_messages(slack)
    await minutes_pass(bot, clock, 20, cpu=30, memory=40)

    # Each signal once, when its duration has passed without data: 5xx after 5 minutes,
    # the average response after 10.
    five_xx, response = said
    assert no_data_messages(slack) == said
    assert "`api-gateway` in production" in five_xx
    assert "5xx no data" in five_xx
    assert "avg response no data" in response
    assert "<@UDEV>" in five_xx
    assert alerts(slack) == []
    assert "watching until" in await card_of(bot, slack, run_id)


async def test_cloudwatch_refusing_is_said_on_the_card_and_the_watch_reads_again(
    make_bot: BotFactory,
    ecs_proxy: EcsProxy,
    served_world: EcsWorld,
    moto_server: str,
    slack: FakeSlack,
    clock: FakeClock,
) -> None:
    bot = await make_bot(BotoEcs())
    run_id = await deploy_production(bot, slack)
    ecs_proxy.fail_next("GetMetricData", "AccessDeniedException")

    await minutes_pass(bot, clock, 1, endpoint_url=moto_server, **HEALTHY)
    refused = await card_of(bot, slack, run_id)
    await minutes_pass(bot, clock, 7, endpoint_url=moto_server, **{**HEALTHY, "errors": 200})

    assert "`cloudwatch:GetMetricData`" in refused
    assert "The watch goes on and reads again." in refused
    assert len(alerts(slack)) == 1
    assert "reads again" not in await card_of(bot, slack, run_id)


async def test_cloudwatch_throttling_past_the_retries_is_said_and_the_watch_reads_again(
    make_bot: BotFactory,
    ecs_proxy: EcsProxy,
    served_world: EcsWorld,
    moto_server: str,
    slack: FakeSlack,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One attempt, where the bot makes six: botocore's back-off runs in real time, and what
    # is tested is what the watch does once the retries are spent.
    monkeypatch.setattr(
        calls, "BOTO_CONFIG", calls.BOTO_CONFIG.merge(BotoConfig(retries={"total_max_attempts": 1}))
    )
    bot = await make_bot(BotoEcs())
    run_id = await deploy_production(bot, slack)
    ecs_proxy.fail_next("GetMetricData", "ThrottlingException", message="Rate exceeded", times=3)

    await minutes_pass(bot, clock, 3, endpoint_url=moto_server, **HEALTHY)
    throttled = await card_of(bot, slack, run_id)
    await minutes_pass(bot, clock, 7, endpoint_url=moto_server, **{**HEALTHY, "errors": 200})

    assert "`ThrottlingException`" in throttled
    assert "The watch goes on and reads again." in throttled
    assert ecs_proxy.count("GetMetricData") > 3
    assert len(alerts(slack)) == 1
    assert "ThrottlingException" not in await card_of(bot, slack, run_id)


async def test_a_later_deploy_of_the_service_ends_the_earlier_watch_and_alone_alerts(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    first = await deploy_production(bot, slack)
    await minutes_pass(bot, clock, 3, **HEALTHY)
    await bot.command("production api-gateway v1.4.0", user="UDEV")
    second = run_id_of(plan_cards(slack)[-1])
    await bot.click(APPROVE_ACTION, second, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, second, user="UAPPROVER2")
    assert (await bot.runtime.runs.get(second)).state is DeploymentState.SUCCEEDED

    await minutes_pass(bot, clock, 7, **{**HEALTHY, "errors": 200})

    [alert] = alerts(slack)
    assert f"breached after deployment `{second}`" in alert["text"]
    assert buttons(alert)[0]["value"] == second
    assert f"watch ended: deployment {second} changed it since" in await card_of(bot, slack, first)
