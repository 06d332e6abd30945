"""`GET /metrics` after real runs and incidents: signed requests, the strict local Slack, moto's
ECS (through the fault proxy where AWS must refuse) and the injected clock; each scrape is read
over HTTP and parsed as Prometheus parses it."""

from __future__ import annotations

import socket
from collections.abc import Iterable

import pytest

from bot.deploy.views import APPROVE_ACTION
from bot.settings import Settings
from pipeline.aws import BotoEcs
from pipeline.kernel.config import Config
from tests.bot.test_incident_reminders import at_minute, declare, in_room
from tests.bot.test_watch import HEALTHY, LB, TG, deploy_production, minutes_pass
from tests.conftest import BotFactory, config_dict
from tests.driver import BotDriver, plan_cards, run_id_of
from tests.fakes.aws_proxy import EcsProxy
from tests.fakes.clock import FakeClock
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack
from tests.scrapes import Samples, labelled, scrape_url, value


@pytest.fixture
def config(health: FakeHealth) -> Config:
    """Production's api-gateway watched after each deploy; the default severities (p1 reminded
    every 15 minutes, p4 never)."""
    data = config_dict(health)
    data["environments"]["production"]["watch"] = {
        "period": "2h",
        "target_groups": {"api-gateway": {"load_balancer": LB, "target_group": TG}},
    }
    return Config.model_validate(data)


async def scrape(bot: BotDriver) -> Samples:
    assert bot.server is not None
    return await scrape_url(str(bot.server.make_url("/metrics")))


def stages(samples: Samples, **labels: str) -> Iterable[str]:
    return [
        dict(key)["stage"]
        for (name, key) in samples
        if name == "chatops_stage_seconds_count" and labels.items() <= dict(key).items()
    ]


async def test_a_staging_deploy_counts_its_outcome_stages_ack_and_calls(
    bot: BotDriver, health: FakeHealth
) -> None:
    """The health check fails twice (15 s apart on the injected clock) before it passes."""
    failures = iter([503, 503])
    health.status_for = lambda service, path: next(failures, 200)

    await bot.command("staging auth-svc v1.4.0", user="UDEV")
    samples = await scrape(bot)

    run = {"environment": "staging", "kind": "deploy"}
    assert value(samples, "chatops_runs_total", **run, outcome="succeeded") == 1
    assert labelled(samples, "chatops_runs_total") == [{**run, "outcome": "succeeded"}]
    assert list(stages(samples, **run)) == ["preflight", "backup", "migrate", "rollout"]
    assert value(samples, "chatops_stage_seconds_sum", **run, stage="rollout") == 30.0
    assert value(samples, "chatops_stage_seconds_count", **run, stage="rollout") == 1
    assert value(samples, "chatops_ack_seconds_count") == 1
    assert 0 < value(samples, "chatops_ack_seconds_sum") < 3
    assert value(samples, "chatops_aws_calls_total", service="ecs", method="UpdateService") == 1
    assert value(samples, "chatops_slack_calls_total", method="chat.postMessage") >= 1
    assert labelled(samples, "chatops_slack_errors_total") == []
    assert labelled(samples, "chatops_aws_errors_total") == []


async def test_a_production_request_is_pending_until_its_second_approval(
    bot: BotDriver, slack: FakeSlack
) -> None:
    await bot.command("production api-gateway", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[0])
    asked = await scrape(bot)
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    half = await scrape(bot)
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2")
    done = await scrape(bot)

    pending = "chatops_approvals_pending"
    assert value(asked, pending, environment="production") == 1
    assert value(asked, pending, environment="staging") == 0
    assert value(half, pending, environment="production") == 1
    assert value(done, pending, environment="production") == 0
    assert labelled(asked, "chatops_runs_total") == []
    assert (
        value(
            done, "chatops_runs_total", environment="production", kind="deploy", outcome="succeeded"
        )
        == 1
    )
    assert value(done, "chatops_ack_seconds_count") == 3


async def test_a_call_slack_refuses_is_counted_with_its_error_code(
    bot: BotDriver, slack: FakeSlack
) -> None:
    slack.fail_next("chat.postMessage", "channel_not_found")

    await bot.command("staging auth-svc v1.4.0", user="UDEV")
    samples = await scrape(bot)

    assert (
        value(
            samples,
            "chatops_slack_errors_total",
            method="chat.postMessage",
            code="channel_not_found",
        )
        == 1
    )
    assert labelled(samples, "chatops_slack_errors_total") == [
        {"method": "chat.postMessage", "code": "channel_not_found"}
    ]


async def test_a_call_aws_refuses_is_counted_with_its_error_code_and_the_run_rolled_back(
    make_bot: BotFactory, ecs_proxy: EcsProxy, served_world: EcsWorld
) -> None:
    bot = await make_bot(BotoEcs())
    ecs_proxy.fail_next("RegisterTaskDefinition", "AccessDeniedException")

    await bot.command("staging api-gateway v1.4.0", user="UDEV")
    samples = await scrape(bot)

    refused = {"service": "ecs", "method": "RegisterTaskDefinition"}
    assert value(samples, "chatops_aws_errors_total", **refused, code="AccessDeniedException") == 1
    assert value(samples, "chatops_aws_calls_total", **refused) == 1
    assert (
        value(
            samples,
            "chatops_runs_total",
            environment="staging",
            kind="deploy",
            outcome="rolled_back",
        )
        == 1
    )


async def test_an_incident_is_open_by_severity_until_resolved_and_its_reminder_fires_on_time(
    bot: BotDriver, clock: FakeClock
) -> None:
    start = clock.now()
    room = await declare(bot, "p1")
    opened = await scrape(bot)
    await at_minute(bot, clock, start, 15)
    reminded = await scrape(bot)
    await in_room(bot, room, "resolve rolled auth-svc back to v1.2.0")
    resolved = await scrape(bot)

    assert value(opened, "chatops_incidents_open", severity="p1") == 1
    assert value(opened, "chatops_incidents_open", severity="p4") == 0
    assert labelled(opened, "chatops_reminders_fired_total") == []
    assert value(reminded, "chatops_reminders_fired_total", severity="p1") == 1
    assert value(reminded, "chatops_reminder_lateness_seconds_count", severity="p1") == 1
    assert value(reminded, "chatops_reminder_lateness_seconds_sum", severity="p1") == 0
    assert value(reminded, "chatops_reminder_lateness_seconds_bucket", severity="p1", le="0.0") == 1
    assert value(resolved, "chatops_incidents_open", severity="p1") == 0


async def test_a_reminder_fired_late_is_counted_as_late(bot: BotDriver, clock: FakeClock) -> None:
    """The bot was down at minute 15: the reminder goes out at minute 20, five minutes late."""
    start = clock.now()
    await declare(bot, "p1")

    await at_minute(bot, clock, start, 20)
    samples = await scrape(bot)

    assert value(samples, "chatops_reminder_lateness_seconds_sum", severity="p1") == 300
    assert value(samples, "chatops_reminder_lateness_seconds_bucket", severity="p1", le="60.0") == 0
    assert (
        value(samples, "chatops_reminder_lateness_seconds_bucket", severity="p1", le="300.0") == 1
    )


async def test_a_watch_alert_is_counted_by_environment_and_kind(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    await deploy_production(bot, slack)
    quiet = await scrape(bot)

    await minutes_pass(bot, clock, 12, **{**HEALTHY, "errors": 120})
    samples = await scrape(bot)

    assert labelled(quiet, "chatops_watch_alerts_total") == []
    assert labelled(samples, "chatops_watch_alerts_total") == [
        {"environment": "production", "kind": "breach"}
    ]
    assert (
        value(samples, "chatops_watch_alerts_total", environment="production", kind="breach") == 1
    )
    assert (
        value(samples, "chatops_aws_calls_total", service="cloudwatch", method="GetMetricData") > 0
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_metrics_on_a_port_of_their_own_are_not_served_on_the_bots_port(
    settings: Settings, config: Config, clock: FakeClock, world: EcsWorld, slack: FakeSlack
) -> None:
    port = free_port()
    apart = settings.model_copy(update={"metrics_port": port, "host": "127.0.0.1"})
    bot = BotDriver(settings=apart, config=config, clock=clock, ecs=BotoEcs(), slack=slack)
    await bot.start()
    try:
        await bot.command("staging auth-svc v1.4.0", user="UDEV")
        samples = await scrape_url(f"http://127.0.0.1:{port}/metrics")
        assert bot.server is not None
        assert bot.http is not None
        async with bot.http.get(bot.server.make_url("/metrics")) as on_bot_port:
            status = on_bot_port.status
    finally:
        await bot.stop()

    assert status == 404
    assert (
        value(
            samples, "chatops_runs_total", environment="staging", kind="deploy", outcome="succeeded"
        )
        == 1
    )
