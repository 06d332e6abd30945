"""User groups in the config that Slack does not know: skipped at run time (logged once, no
traceback), warned about at start-up; the people of the groups Slack knows still act."""

from __future__ import annotations

import logging

import pytest

from pipeline.kernel.config import Config
from tests.bot.test_rollback import deploy_production, rollback
from tests.conftest import config_dict
from tests.driver import BotDriver
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack

GONE = "S0GONE"  # a group the fake Slack does not have: it answers `no_such_subteam`


@pytest.fixture
def config(health: FakeHealth) -> Config:
    data = config_dict(health)
    data["environments"]["production"]["rollbackers"] = [GONE, "S0LEADS", "UONCALL"]
    return Config.model_validate(data)


def logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Everything logged since the bot started (its start-up is the fixture's setup)."""
    return caplog.get_records("setup") + caplog.get_records("call")


async def test_a_member_of_a_known_group_rolls_back_past_an_unknown_one(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld
) -> None:
    await deploy_production(bot, slack, "api-gateway")

    await rollback(bot, "production api-gateway -y", user="ULEAD1")

    assert world.version("production", "api-gateway") == "v1.2.0"


async def test_an_outsider_is_refused_naming_the_rollbackers_not_a_slack_failure(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld
) -> None:
    await deploy_production(bot, slack, "api-gateway")

    reply = await rollback(bot, "production api-gateway -y", user="UINTRUDER")

    text = reply["body"]["text"]
    assert "Only the rollbackers of `production`" in text
    assert "could not list" not in text
    assert world.version("production", "api-gateway") == "v1.3.0"


async def test_an_unknown_group_is_logged_once_without_a_traceback(
    bot: BotDriver, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    await deploy_production(bot, slack, "api-gateway")

    await rollback(bot, "production api-gateway -y", user="UINTRUDER")
    await rollback(bot, "production api-gateway -y", user="UOTHER")

    about_it = [r for r in logged(caplog) if GONE in r.getMessage()]
    assert [r.levelno for r in about_it] == [logging.WARNING]
    assert [r.getMessage() for r in logged(caplog) if r.exc_info] == []


async def test_start_up_warns_of_an_unknown_group_naming_the_keys_that_name_it(
    bot: BotDriver, caplog: pytest.LogCaptureFixture
) -> None:
    started = caplog.get_records("setup")

    [warning] = [r for r in started if GONE in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert "environments.production.rollbackers" in warning.getMessage()
    assert [r for r in started if "S0LEADS" in r.getMessage()] == []
