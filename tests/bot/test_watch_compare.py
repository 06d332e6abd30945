"""Compared with before, end to end: the hour before a production deploy put into moto's
CloudWatch, the deploy through signed requests and the strict local Slack, and the minutes
after it driven by the injected clock. A regression under the thresholds is one warning in the
deploy's thread, never a rollback; noise is none."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest

from pipeline.kernel.config import Config
from store.deploy.models import DeploymentState
from tests.bot.test_watch import (
    HEALTHY,
    LB,
    ONCALL,
    TG,
    TG_DIMENSION,
    buttons,
    card_of,
    deploy_production,
    minutes_pass,
)
from tests.conftest import config_dict
from tests.driver import BotDriver
from tests.fakes.clock import FakeClock
from tests.fakes.ecs_world import aws_client
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack


@pytest.fixture
def config(health: FakeHealth) -> Config:
    """Production watched with `rollback = true`: a breach would roll back at once, and a
    regression still must not."""
    data = config_dict(health)
    production = data["environments"]["production"]
    production["rollbackers"] = [ONCALL]
    production["watch"] = {
        "period": "20m",
        "rollback": True,
        "target_groups": {"api-gateway": {"load_balancer": LB, "target_group": TG}},
    }
    return Config.model_validate(data)


def put_history(end: datetime, errors: list[float]) -> None:
    """The minutes before `end`, one a value of `errors` (per 1000 requests), into CloudWatch."""
    start = end - timedelta(minutes=len(errors))
    dims = [{"Name": "TargetGroup", "Value": TG_DIMENSION}, {"Name": "LoadBalancer", "Value": LB}]
    data = []
    for i, e in enumerate(errors):
        at = start + timedelta(minutes=i, seconds=30)
        data += [
            {"MetricName": "RequestCount", "Dimensions": dims, "Timestamp": at, "Value": 1000},
            {
                "MetricName": "HTTPCode_Target_5XX_Count",
                "Dimensions": dims,
                "Timestamp": at,
                "Value": e,
            },
            {"MetricName": "TargetResponseTime", "Dimensions": dims, "Timestamp": at, "Value": 0.2},
        ]
    aws_client("cloudwatch").put_metric_data(Namespace="AWS/ApplicationELB", MetricData=data)


def warnings(slack: FakeSlack) -> list[dict[str, Any]]:
    return [c for c in slack.of("chat.postMessage") if "worse than before deployment" in c["text"]]


def breaches(slack: FakeSlack) -> list[dict[str, Any]]:
    return [c for c in slack.of("chat.postMessage") if "breached after deployment" in c["text"]]


async def bad_minutes(bot: BotDriver, clock: FakeClock, n: int, rng: random.Random) -> None:
    """`n` minutes of about 0.9% 5xx: worse than before, under the 5% threshold."""
    for _ in range(n):
        await minutes_pass(bot, clock, 1, **{**HEALTHY, "errors": rng.choice([7, 8, 9, 10, 11])})


async def test_a_regression_under_the_thresholds_is_one_warning_in_the_thread_never_a_rollback(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    rng = random.Random(18)
    put_history(clock.now(), [rng.choice([0, 1, 1, 2]) for _ in range(60)])
    run_id = await deploy_production(bot, slack)

    await bad_minutes(bot, clock, 14, rng)

    [warning] = warnings(slack)
    run = await bot.runtime.runs.get(run_id)
    assert warning["thread_ts"] == run.message_ts
    for person in ("<@UDEV>", "<@UAPPROVER1>", "<@UAPPROVER2>"):
        assert person in warning["text"]
    assert "5xx 0.1% → 0.9%, p < 0.001" in warning["text"]
    assert "nothing is rolled back" in warning["text"]
    assert [b["text"]["text"] for b in buttons(warning)] == ["Roll back", "Open incident"]
    assert "confirm" in buttons(warning)[0]
    assert breaches(slack) == []
    assert (run.state, run.reverted_by) == (DeploymentState.SUCCEEDED, None)
    await bad_minutes(bot, clock, 7, rng)  # to the end of the watch's 20 minutes
    assert len(warnings(slack)) == 1
    assert "watch ended: no breach; worse than before: 5xx" in await card_of(bot, slack, run_id)


async def test_the_baseline_is_read_once_and_a_restart_neither_loses_nor_repeats_the_warning(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    rng = random.Random(6)
    deploy_at = clock.now()
    put_history(deploy_at, [rng.choice([0, 1, 1, 2]) for _ in range(60)])
    await deploy_production(bot, slack)
    await bad_minutes(bot, clock, 2, rng)
    # The hour before made as bad as after, once the watch has read it: read again, it would
    # hide the regression.
    put_history(deploy_at, [9] * 60)

    await bot.restart()
    await bad_minutes(bot, clock, 12, rng)
    said = len(warnings(slack))
    await bot.restart()
    await bad_minutes(bot, clock, 4, rng)

    assert (said, len(warnings(slack))) == (1, 1)


async def test_the_same_noise_before_and_after_is_no_warning(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    rng = random.Random(4)
    put_history(clock.now(), [rng.choice([0, 1, 2, 3, 4]) for _ in range(60)])
    await deploy_production(bot, slack)

    for _ in range(20):
        await minutes_pass(bot, clock, 1, **{**HEALTHY, "errors": rng.choice([0, 1, 2, 3, 4])})

    assert warnings(slack) == []
    assert breaches(slack) == []
