"""`/health <environment> [service…] [--full]` through signed requests, the strict local Slack,
local health servers and moto (ECS): one table of status, latency and version seen, checked in
parallel; `--full` adds what ECS runs; bad input answered privately."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from pipeline.kernel.config import Config
from tests.conftest import SERVICES, config_dict
from tests.driver import BotDriver
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack

VERSIONS = {"api-gateway": "v1.2.0", "auth-svc": "v1.2.0"}


@pytest.fixture
def config(health: FakeHealth) -> Config:
    """Production's endpoints get a tiny time budget, so a silent one fails fast."""
    data = config_dict(health)
    data["environments"]["production"]["health"]["timeout"] = "500ms"
    del data["services"]["market-svc"]["health_url"]["staging"]
    return Config.model_validate(data)


async def health_of(bot: BotDriver, text: str) -> dict[str, Any]:
    return await bot.command(text, command="/health", user="UDEV")


def said(slack: FakeSlack) -> str:
    """The last reply the bot sent through a response_url, checked to be private."""
    reply = slack.responses[-1]
    assert reply["response_type"] == "ephemeral"
    return str(reply["text"])


def rows(text: str) -> dict[str, str]:
    """The table's rows by service name."""
    found = {}
    for row in text.splitlines()[1:]:
        name = re.search(r"`([a-z-]+)`", row)
        assert name is not None, row
        found[name.group(1)] = row
    return found


class TestTheTable:
    async def test_a_mix_of_healthy_and_failing_services_is_one_table(
        self, bot: BotDriver, slack: FakeSlack, health: FakeHealth
    ) -> None:
        health.status_for = lambda service, path: 503 if service == "market-svc" else 200
        health.version_for = VERSIONS.get

        await health_of(bot, "production")

        text = said(slack)
        assert text.splitlines()[0] == "🩺 *Health of `production`*: 2/3 healthy"
        table = rows(text)
        assert list(table) == list(SERVICES)
        assert re.fullmatch(
            r"✅ `api-gateway`: all endpoints answered · \d+ ms · v1\.2\.0", table["api-gateway"]
        )
        assert re.fullmatch(
            r"✅ `auth-svc`: all endpoints answered · \d+ ms · v1\.2\.0", table["auth-svc"]
        )
        assert re.fullmatch(
            r"❌ `market-svc`: `/health` 503, `/ready` 503, `/api/v1/status` 503 · \d+ ms",
            table["market-svc"],
        )

    async def test_only_the_named_services_are_checked(
        self, bot: BotDriver, slack: FakeSlack, health: FakeHealth
    ) -> None:
        await health_of(bot, "production auth-svc,market-svc")

        assert list(rows(said(slack))) == ["auth-svc", "market-svc"]
        assert {s for s, _, _ in health.hits} == {"auth-svc", "market-svc"}

    async def test_a_service_named_twice_is_one_row(self, bot: BotDriver, slack: FakeSlack) -> None:
        await health_of(bot, "production auth-svc AUTH-SVC,auth-svc")

        assert said(slack).splitlines()[1:] == [rows(said(slack))["auth-svc"]]

    async def test_an_endpoint_that_does_not_answer_in_time_fails_its_service(
        self, bot: BotDriver, slack: FakeSlack, health: FakeHealth
    ) -> None:
        health.pause_when = lambda service, path: service == "auth-svc" and path == "/ready"

        await health_of(bot, "production")

        text = said(slack)
        assert "`/ready` no answer" in rows(text)["auth-svc"]
        assert rows(text)["auth-svc"].startswith("❌")
        assert rows(text)["api-gateway"].startswith("✅")

    async def test_the_services_are_checked_in_parallel(
        self, bot: BotDriver, slack: FakeSlack, health: FakeHealth
    ) -> None:
        """No endpoint answers until every service has been asked: one at a time, the first
        would run out of time (staging's 5s) waiting for the others."""
        asked: set[str] = set()
        everyone = asyncio.Event()

        async def hold(service: str, path: str) -> None:
            asked.add(service)
            if asked == {"api-gateway", "auth-svc"}:
                everyone.set()
            await everyone.wait()

        health.before_answer = hold

        await health_of(bot, "staging")

        assert said(slack).splitlines()[0] == "🩺 *Health of `staging`*: 2/2 healthy"

    async def test_a_service_without_a_health_url_there_is_not_counted(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        await health_of(bot, "staging")

        text = said(slack)
        assert text.splitlines()[0] == "🩺 *Health of `staging`*: 2/2 healthy"
        assert rows(text)["market-svc"] == "➖ `market-svc`: no health URL here"


class TestFull:
    async def test_full_adds_the_ecs_counts_and_task_definition(
        self, bot: BotDriver, slack: FakeSlack, world: EcsWorld, health: FakeHealth
    ) -> None:
        health.version_for = VERSIONS.get
        world.client.update_service(
            cluster=world.cluster("production"), service="auth-svc", desiredCount=3
        )

        await health_of(bot, "production --full")

        table = rows(said(slack))
        assert table["api-gateway"].endswith(" · v1.2.0 · ECS 2/2 on `production-api-gateway:1`")
        assert table["auth-svc"].endswith(" · ECS 3/3 on `production-auth-svc:1`")

    async def test_without_full_ecs_is_not_shown(self, bot: BotDriver, slack: FakeSlack) -> None:
        await health_of(bot, "production")

        assert "ECS" not in said(slack)

    async def test_full_shows_ecs_even_where_there_is_no_health_url(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        await health_of(bot, "staging market-svc --full")

        assert rows(said(slack))["market-svc"] == (
            "➖ `market-svc`: no health URL here · ECS 2/2 on `staging-market-svc:1`"
        )


class TestBadInput:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("qa", "No environment is called `qa`. Try one of `production`, `staging`."),
            ("production web", "`api-gateway`"),
            ("production --fast", "`--fast` is not a flag of `/health`; the only one is `--full`."),
        ],
    )
    async def test_bad_input_is_answered_privately_and_nothing_is_checked(
        self, bot: BotDriver, health: FakeHealth, text: str, expected: str
    ) -> None:
        reply = await health_of(bot, text)

        body = reply["body"]
        assert body["response_type"] == "ephemeral"
        assert expected in body["text"]
        assert f"You typed `/health {text}`." in body["text"]
        assert health.hits == []

    @pytest.mark.parametrize("text", ["", "help"])
    async def test_health_alone_or_help_shows_the_usage(self, bot: BotDriver, text: str) -> None:
        reply = await health_of(bot, text)

        assert "/health <environment> [service...] [--full]" in reply["body"]["text"]
        assert "Environments: `production`, `staging`" in reply["body"]["text"]
