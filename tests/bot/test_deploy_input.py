"""Bad `/deploy` input, sent as Slack signs it: an ephemeral ack that explains, and nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from tests.driver import BotDriver
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.slack_api import FakeSlack


def ephemeral_text(reply: dict[str, Any]) -> str:
    """The ack's text, checking Slack shows it only to the user (plain text or ephemeral)."""
    body = reply["body"]
    if isinstance(body, str):
        return body
    assert body.get("response_type", "ephemeral") == "ephemeral"
    return str(body["text"])


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("prod api-gateway v1.2.3", ["`production`", "`staging`"]),
        ("production web", ["`api-gateway`", "`auth-svc`", "`market-svc`", "`all`"]),
        ("production api-gateway 1.2.3", ["`v1.2.3`", "`v2.0.0-rc1`"]),
        ("production api-gateway v1.2.3 right-now", ["`right-now`"]),
        ("production api-gateway,,auth-svc", ["`api-gateway`", "`auth-svc`"]),
        ("staging auth-svc", ["/deploy staging auth-svc v1.2.3"]),
        ("status", ["/deploy status <deployment-id>"]),
        ("history qa", ["`production`", "`staging`"]),
        ("help me", ["/deploy help"]),
    ],
)
async def test_bad_input_gets_an_ephemeral_ack_naming_the_choices_and_records_nothing(
    bot: BotDriver, slack: FakeSlack, text: str, names: list[str]
) -> None:
    reply = await bot.command(text)

    assert reply["status"] == 200
    said = ephemeral_text(reply)
    for name in names:
        assert name in said
    assert f"You typed `/deploy {text}`." in said
    assert await bot.runtime.deploy.history(None) == []
    assert slack.of("chat.postMessage") == []
    assert slack.of("chat.update") == []


@pytest.mark.parametrize("text", ["", "help", "  HELP  "])
async def test_deploy_alone_or_help_shows_the_usage(
    bot: BotDriver, slack: FakeSlack, text: str
) -> None:
    reply = await bot.command(text)

    said = ephemeral_text(reply)
    assert "*Usage*" in said
    assert "/deploy status <deployment-id>" in said
    assert slack.of("chat.postMessage") == []


@pytest.mark.parametrize(
    ("version", "why"),
    [
        pytest.param("v１.２.３", "`１` (FULLWIDTH DIGIT ONE)", id="full-width-digits"),
        pytest.param("v١.٢.٣", "`١` (ARABIC-INDIC DIGIT ONE)", id="arabic-indic-digits"),
        pytest.param("v1.2.3-" + "a" * 193, "200 characters long", id="200-characters"),
    ],
)
async def test_a_version_that_is_no_image_tag_is_refused_and_nothing_is_deployed(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld, version: str, why: str
) -> None:
    before = world.task_definition("staging", "api-gateway")

    reply = await bot.command(f"staging api-gateway {version}", user="UDEV")

    said = ephemeral_text(reply)
    assert f"`{version}` is not a version" in said
    assert why in said
    assert "image tag" in said
    assert "`v1.2.3`" in said
    assert await bot.runtime.deploy.history(None) == []
    assert slack.of("chat.postMessage") == []
    assert world.task_definition("staging", "api-gateway") == before
