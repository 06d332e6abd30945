"""Who may post updates, hand over and resolve an incident (the commander, the severity's
responders, members of the war room, as `may_act` says), and what a resolved incident looks like
in the war room's topic, its pinned alert and its announcement (issue 16)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.incident.views import POST_UPDATE_ACTION, RESOLVE_ACTION, UPDATE_VIEW
from pipeline.kernel.config import Config
from sandbox.slack import Message
from store.incident.models import Incident
from tests.conftest import config_dict
from tests.driver import BotDriver
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack

OUTSIDER = "UOUTSIDER"


@pytest.fixture
def config(health: FakeHealth) -> Config:
    data = config_dict(health)
    data["incidents"]["severities"] = {
        "p1": {
            "description": "Service down, all users affected",
            "response_time": "Immediate",
            "update_every": "15m",
            "responders": ["UONCALL1", "S0LEADS"],
        },
        "p2": {
            "description": "Major feature broken",
            "response_time": "15 minutes",
            "update_every": "30m",
            "responders": ["UONCALL1"],
            "may_act": ["commander", "responders"],
        },
    }
    return Config.model_validate(data)


async def declare(bot: BotDriver, severity: str = "p1") -> Incident:
    await bot.command(
        f"{severity} auth login failing", command="/incident", user="UCMD", channel="CGENERAL"
    )
    return (await bot.runtime.incident.list_open())[0]


async def incident_command(bot: BotDriver, incident: Incident, text: str, *, user: str) -> None:
    await bot.command(text, command="/incident", user=user, channel=incident.channel_id)


def private_reply(slack: FakeSlack) -> dict[str, Any]:
    """The last private answer sent through a response_url."""
    reply = slack.responses[-1]
    assert reply.get("response_type", "ephemeral") == "ephemeral"
    return reply


def room_texts(slack: FakeSlack, channel: str) -> list[str]:
    return [m.text for m in slack.workspace.channel(channel).messages]


def pinned_alert(slack: FakeSlack, incident: Incident) -> Message:
    assert incident.alert_ts is not None
    return slack.workspace.message(incident.channel_id, incident.alert_ts)


def announcement(slack: FakeSlack, incident: Incident) -> Message:
    assert incident.announce_channel is not None
    assert incident.announce_ts is not None
    return slack.workspace.message(incident.announce_channel, incident.announce_ts)


def block_text(message: Message) -> str:
    return str(message.blocks)


def action_ids(message: Message) -> list[str]:
    return [
        e["action_id"]
        for b in message.blocks or []
        if b["type"] == "actions"
        for e in b["elements"]
    ]


class TestWhoMayAct:
    async def test_an_outsider_cannot_resolve_and_is_told_privately_who_can(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        incident = await declare(bot)

        await incident_command(bot, incident, "resolve it went away", user=OUTSIDER)

        assert private_reply(slack)["text"].startswith(
            "Only the incident commander <@UCMD>, <@UONCALL1>, <!subteam^S0LEADS> and the "
            f"members of the war room #{incident.channel_name} can resolve this P1 incident. "
            "Nothing was changed."
        )
        [still] = await bot.runtime.incident.list_open()
        assert still.next_update_due_at == incident.next_update_due_at
        assert not any("RESOLVED" in t for t in room_texts(slack, incident.channel_id))
        entry = (await bot.runtime.audit.recent())[0]
        assert (entry.actor, entry.outcome[:9]) == (OUTSIDER, "refused: ")

    async def test_an_outsider_cannot_post_an_update(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        incident = await declare(bot)

        await incident_command(bot, incident, "update identified it was dns", user=OUTSIDER)

        assert "can post an update on this P1 incident" in private_reply(slack)["text"]
        assert not any("UPDATE" in t for t in room_texts(slack, incident.channel_id))

    async def test_an_outsider_cannot_hand_over(self, bot: BotDriver, slack: FakeSlack) -> None:
        incident = await declare(bot)

        await incident_command(bot, incident, f"commander <@{OUTSIDER}>", user=OUTSIDER)

        assert "can hand over this P1 incident" in private_reply(slack)["text"]
        [still] = await bot.runtime.incident.list_open()
        assert still.commander == "UCMD"

    async def test_an_outsiders_click_on_resolve_opens_no_form(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        incident = await declare(bot)

        await bot.click(RESOLVE_ACTION, incident.id, user=OUTSIDER, channel=incident.channel_id)

        assert slack.of("views.open") == []
        assert "can resolve this P1 incident" in private_reply(slack)["text"]

    async def test_an_outsiders_click_on_post_update_opens_no_form(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        incident = await declare(bot)

        await bot.click(POST_UPDATE_ACTION, incident.id, user=OUTSIDER, channel=incident.channel_id)

        assert slack.of("views.open") == []
        assert "can post an update on this P1 incident" in private_reply(slack)["text"]

    async def test_an_outsiders_update_form_changes_nothing(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        incident = await declare(bot)
        fields = {"status": "identified", "action": "dns", "eta": "soon", "impact": "logins"}

        await bot.submit(UPDATE_VIEW, incident.id, fields, user=OUTSIDER)

        assert not any("UPDATE" in t for t in room_texts(slack, incident.channel_id))
        [still] = await bot.runtime.incident.list_open()
        assert still.last_update_at == incident.last_update_at

    async def test_a_member_of_a_responder_group_posts_an_update(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        incident = await declare(bot)

        await incident_command(bot, incident, "update identified it was dns", user="ULEAD2")

        assert room_texts(slack, incident.channel_id)[-1].startswith("📍 UPDATE")

    async def test_someone_who_joined_the_war_room_may_resolve(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        incident = await declare(bot)
        slack.workspace.join(incident.channel_id, "UDANA")

        await incident_command(bot, incident, "resolve it was dns", user="UDANA")

        assert await bot.runtime.incident.list_open() == []

    async def test_a_severity_may_leave_the_war_room_out(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        incident = await declare(bot, "p2")
        slack.workspace.join(incident.channel_id, "UDANA")

        await incident_command(bot, incident, "resolve it was dns", user="UDANA")

        text = private_reply(slack)["text"]
        assert text.startswith(
            "Only the incident commander <@UCMD> and <@UONCALL1> can resolve this P2 incident."
        )
        assert len(await bot.runtime.incident.list_open()) == 1


class TestResolvedShowsResolved:
    async def test_the_pinned_alert_says_resolved_and_has_no_buttons(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        incident = await declare(bot)
        assert action_ids(pinned_alert(slack, incident)) != []

        await incident_command(bot, incident, "resolve rolled back", user="UCMD")

        alert = pinned_alert(slack, incident)
        assert alert.text.startswith("✅ RESOLVED: auth login failing incident")
        assert "Investigating" not in block_text(alert)
        assert action_ids(alert) == []

    async def test_after_a_hand_over_all_three_show_the_current_commander(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        incident = await declare(bot)
        await incident_command(bot, incident, "commander <@UDANA>", user="UCMD")

        await incident_command(bot, incident, "resolve rolled back", user="UDANA")

        assert "Commander: <@UDANA>" in block_text(pinned_alert(slack, incident))
        said = announcement(slack, incident).text
        assert said.startswith("✅ RESOLVED: auth login failing incident")
        assert "Commander: <@UDANA>" in said
        assert "<@UCMD>" not in said
        assert slack.workspace.channel(incident.channel_id).topic == (
            "✅ RESOLVED · P1 · auth login failing · Commander: <@UDANA>"
        )

    async def test_a_hand_over_redraws_the_alert_with_the_new_commander_while_open(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        incident = await declare(bot)

        await incident_command(bot, incident, "commander <@UDANA>", user="UCMD")

        alert = pinned_alert(slack, incident)
        assert "Commander: <@UDANA>" in block_text(alert)
        assert RESOLVE_ACTION in action_ids(alert)
        assert slack.workspace.channel(incident.channel_id).topic == (
            "P1 · auth login failing · Commander: <@UDANA>"
        )
