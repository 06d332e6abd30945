"""Bad `/incident` input: an ephemeral reply naming what is valid, nothing changed, audited."""

from __future__ import annotations

from typing import Any

import pytest

from bot.mrkdwn import escape
from store.incident.models import EventKind, IncidentEvent
from store.incident.repository import Incidents
from tests.driver import BotDriver
from tests.fakes.slack_api import FakeSlack

SUBCOMMANDS = ("update", "resolve", "commander", "list", "help")


async def incident(bot: BotDriver, text: str, *, channel: str = "CGENERAL") -> dict[str, Any]:
    return await bot.command(text, command="/incident", user="UCMD", channel=channel)


async def open_room(bot: BotDriver) -> str:
    await incident(bot, "p1 auth login failing")
    return (await bot.runtime.incident.list_open())[0].channel_id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("p5 auth down", ["`p5` is neither a severity nor a subcommand", "`p1`, `p2`, `p3`, `p4`"]),
        ("p1", ["Add a summary", "`/incident p1 auth login failing`"]),
        ("update identified found it", ["works only in an incident's war-room channel"]),
        ("resolve fixed it", ["`/incident resolve` works only in an incident's war-room"]),
        ("commander <@UDANA|dana>", ["`/incident commander` works only in an incident's"]),
        ("list please", ["`/incident list` takes nothing after it"]),
    ],
)
async def test_bad_input_outside_a_war_room_is_refused_privately_and_changes_nothing(
    bot: BotDriver, slack: FakeSlack, text: str, expected: list[str]
) -> None:
    reply = await incident(bot, text)

    assert reply["status"] == 200
    assert reply["body"]["response_type"] == "ephemeral"
    for fragment in expected:
        assert fragment in reply["body"]["text"]
    assert f"You typed `/incident {escape(text)}`." in reply["body"]["text"]
    assert slack.of("conversations.create") == []
    assert slack.of("chat.postMessage") == []
    assert await bot.runtime.incident.list_open() == []
    (entry,) = await bot.runtime.audit.recent()
    assert (entry.action, entry.actor) == (f"/incident {text}", "UCMD")
    assert entry.outcome.startswith("refused: ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "update fixing it",
            ["`fixing` is not an update status", "`investigating`", "`monitoring`"],
        ),
        ("update", ["Say the status and what you are doing"]),
        ("update mitigating", ["Say what you are doing"]),
        ("resolve", ["Say what fixed it"]),
        ("commander dana", ["Mention the new commander", "`dana` is not a mention"]),
    ],
)
async def test_bad_input_in_a_war_room_changes_nothing(
    bot: BotDriver, slack: FakeSlack, text: str, expected: list[str]
) -> None:
    room = await open_room(bot)
    before = await bot.runtime.incident.list_open()
    posts = len(slack.of("chat.postMessage"))

    reply = await incident(bot, text, channel=room)

    assert reply["body"]["response_type"] == "ephemeral"
    for fragment in expected:
        assert fragment in reply["body"]["text"]
    assert await bot.runtime.incident.list_open() == before
    assert len(slack.of("chat.postMessage")) == posts
    assert (await bot.runtime.audit.recent())[0].outcome.startswith("refused: ")


async def test_resolving_twice_says_when_it_was_resolved_and_changes_nothing(
    bot: BotDriver, slack: FakeSlack
) -> None:
    room = await open_room(bot)
    await incident(bot, "resolve rolled back", channel=room)
    posts = len(slack.of("chat.postMessage"))

    reply = await incident(bot, "resolve rolled back again", channel=room)

    assert reply["body"]["response_type"] == "ephemeral"
    assert "was already resolved at 09:00 UTC; nothing was changed" in reply["body"]["text"]
    assert len(slack.of("chat.postMessage")) == posts
    resolutions = [e for e in await _events(bot, room) if e.kind is EventKind.RESOLVED]
    assert [e.detail for e in resolutions] == ["rolled back"]


async def _events(bot: BotDriver, room: str) -> list[IncidentEvent]:
    incidents = Incidents(bot.runtime.store)
    found = await incidents.by_channel(room)
    assert found is not None
    return await incidents.events(found.id)


async def test_an_update_after_resolution_is_refused(bot: BotDriver, slack: FakeSlack) -> None:
    room = await open_room(bot)
    await incident(bot, "resolve rolled back", channel=room)

    reply = await incident(bot, "update monitoring still watching", channel=room)

    assert "was already resolved" in reply["body"]["text"]


async def test_incident_help_lists_every_subcommand_and_severity(bot: BotDriver) -> None:
    reply = await incident(bot, "help")

    usage = reply["body"]["text"]
    assert reply["body"]["response_type"] == "ephemeral"
    assert "`/incident <p1|p2|p3|p4> <summary>`" in usage
    assert "`/incident [declare]`: open the declare form" in usage
    for sub in SUBCOMMANDS:
        assert f"`/incident {sub}" in usage
    assert (
        "• `p1` Service down, all users affected (response: Immediate; updates every 15 minutes)"
        in usage
    )
    assert "• `p4` Cosmetic issue (response: Next business day; no update reminders)" in usage
    assert (await bot.runtime.audit.recent())[0].outcome == "help"


async def test_an_invite_of_an_unknown_new_commander_is_explained_and_changes_nothing(
    bot: BotDriver, slack: FakeSlack
) -> None:
    room = await open_room(bot)
    slack.fail_next("conversations.invite", "user_not_found")

    await incident(bot, "commander <@UGHOST|ghost>", channel=room)

    reply = slack.responses[-1]
    assert reply["response_type"] == "ephemeral"
    assert "Slack would not add <@UGHOST> to the war room (`user_not_found`)" in reply["text"]
    assert (await bot.runtime.incident.list_open())[0].commander == "UCMD"


async def test_handing_command_to_the_current_commander_changes_nothing(
    bot: BotDriver, slack: FakeSlack
) -> None:
    room = await open_room(bot)

    await incident(bot, "commander <@UCMD|me>", channel=room)

    reply = slack.responses[-1]
    assert reply["response_type"] == "ephemeral"
    assert "<@UCMD> is already the incident commander" in reply["text"]
    assert len(slack.of("conversations.invite")) == 1
