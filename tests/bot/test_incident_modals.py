"""The *Post update* and *Resolve* buttons: modals opened with `views.open`, prefilled, and
their submissions validated (errors shown in the modal) and handled.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bot.incident.views import POST_UPDATE_ACTION, RESOLVE_ACTION, RESOLVE_VIEW, UPDATE_VIEW
from commands.exchange import read_form_metadata
from store.incident.models import Incident, IncidentStatus
from tests.driver import BotDriver
from tests.fakes.clock import FakeClock
from tests.fakes.slack_api import FakeSlack


async def open_incident(bot: BotDriver) -> Incident:
    await bot.command("p1 auth login failing", command="/incident", user="UCMD", channel="CGEN")
    return (await bot.runtime.incident.list_open())[0]


async def submit(
    bot: BotDriver,
    callback_id: str,
    incident_id: str,
    fields: dict[str, str],
    *,
    user: str = "UCMD",
) -> tuple[int, Any]:
    """Send a signed view_submission; the HTTP status and the ack body (None when empty)."""
    return await bot.submit(callback_id, incident_id, fields, user=user)


def room_texts(slack: FakeSlack, room: str) -> list[str]:
    return [str(c["text"]) for c in slack.of("chat.postMessage") if c["channel"] == room]


def initial(view: dict[str, Any], block_id: str) -> Any:
    block = next(b for b in view["blocks"] if b.get("block_id") == block_id)
    element = block["element"]
    if "initial_option" in element:
        return element["initial_option"]["value"]
    return element.get("initial_value")


UPDATE = {
    "status": "mitigating",
    "action": "rolling auth-svc back to v1.2.0",
    "eta": "20 minutes",
    "impact": "half of logins fail",
}


class TestPostUpdate:
    async def test_the_button_opens_the_modal_with_the_trigger_id(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        incident = await open_incident(bot)

        await bot.click(
            POST_UPDATE_ACTION,
            incident.id,
            user="UCMD",
            channel=incident.channel_id,
            trigger_id="T-trigger",
        )

        (opened,) = slack.of("views.open")
        assert opened["trigger_id"] == "T-trigger"
        view = opened["view"]
        view = json.loads(view) if isinstance(view, str) else view
        assert view["callback_id"] == UPDATE_VIEW
        assert read_form_metadata(view["private_metadata"]) == (incident.id, incident.channel_id)
        assert [b.get("block_id") for b in view["blocks"][1:]] == [
            "status",
            "action",
            "eta",
            "impact",
        ]
        assert initial(view, "status") == "investigating"
        assert initial(view, "eta") == "Unknown"
        assert initial(view, "impact") == "auth login failing"

    async def test_the_modal_is_prefilled_from_the_last_update(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        incident = await open_incident(bot)
        await submit(bot, UPDATE_VIEW, incident.id, UPDATE)

        await bot.click(POST_UPDATE_ACTION, incident.id, user="UCMD", channel=incident.channel_id)

        view = slack.of("views.open")[-1]["view"]
        view = json.loads(view) if isinstance(view, str) else view
        assert {b: initial(view, b) for b in UPDATE} == UPDATE

    async def test_a_submission_posts_the_update_template_and_resets_the_timer(
        self, bot: BotDriver, slack: FakeSlack, clock: FakeClock
    ) -> None:
        incident = await open_incident(bot)
        clock.advance(600)

        status, body = await submit(bot, UPDATE_VIEW, incident.id, UPDATE)

        assert (status, body) == (200, None)
        assert room_texts(slack, incident.channel_id)[-1] == (
            "📍 UPDATE: auth login failing incident\n"
            "- Status: Mitigating\n"
            "- Action: rolling auth-svc back to v1.2.0\n"
            "- ETA: 20 minutes\n"
            "- Impact: half of logins fail"
        )
        after = (await bot.runtime.incident.list_open())[0]
        assert after.status is IncidentStatus.MITIGATING
        assert after.next_update_due_at is not None
        assert (after.next_update_due_at - incident.opened_at).total_seconds() == 25 * 60

    async def test_blank_fields_come_back_as_errors_in_the_modal(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        incident = await open_incident(bot)
        posts = len(slack.of("chat.postMessage"))

        status, body = await submit(
            bot,
            UPDATE_VIEW,
            incident.id,
            {"status": "fixed", "action": "   ", "eta": "", "impact": "x"},
        )

        assert status == 200
        assert body["response_action"] == "errors"
        assert set(body["errors"]) == {"status", "action", "eta"}
        assert "investigating, identified, mitigating or monitoring" in body["errors"]["status"]
        assert len(slack.of("chat.postMessage")) == posts
        entry = (await bot.runtime.audit.recent())[0]
        assert entry.action == f"submit post update {incident.id}"
        assert entry.outcome.startswith("refused: ")

    async def test_a_submission_for_a_resolved_incident_is_refused_in_the_modal(
        self, bot: BotDriver
    ) -> None:
        incident = await open_incident(bot)
        await submit(bot, RESOLVE_VIEW, incident.id, {"impact": "x", "resolution": "fixed"})

        _, body = await submit(bot, UPDATE_VIEW, incident.id, UPDATE)

        assert body["response_action"] == "errors"
        assert "already resolved" in body["errors"]["status"]


class TestResolve:
    async def test_the_button_opens_the_resolve_modal_prefilled_with_the_impact(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        incident = await open_incident(bot)

        await bot.click(RESOLVE_ACTION, incident.id, user="UCMD", channel=incident.channel_id)

        view = slack.of("views.open")[-1]["view"]
        view = json.loads(view) if isinstance(view, str) else view
        assert view["callback_id"] == RESOLVE_VIEW
        assert [b.get("block_id") for b in view["blocks"][1:]] == [
            "impact",
            "resolution",
            "follow_up",
        ]
        assert initial(view, "impact") == "auth login failing"
        assert initial(view, "resolution") is None

    async def test_a_submission_posts_the_resolved_template_and_the_post_mortem(
        self, bot: BotDriver, slack: FakeSlack, clock: FakeClock
    ) -> None:
        incident = await open_incident(bot)
        clock.advance(47 * 60)

        await submit(
            bot,
            RESOLVE_VIEW,
            incident.id,
            {
                "impact": "logins failed for 47 minutes",
                "resolution": "rolled auth-svc back",
                "follow_up": "add a canary for auth config",
            },
        )

        texts = room_texts(slack, incident.channel_id)
        assert texts[-2] == (
            "✅ RESOLVED: auth login failing incident\n"
            "- Duration: 47 minutes\n"
            "- Impact: logins failed for 47 minutes\n"
            "- Resolution: rolled auth-svc back\n"
            "- Follow-up: add a canary for auth config"
        )
        assert texts[-1].endswith("*Action items*\n• add a canary for auth config")
        assert await bot.runtime.incident.list_open() == []

    async def test_a_blank_resolution_comes_back_as_an_error(self, bot: BotDriver) -> None:
        incident = await open_incident(bot)

        _, body = await submit(bot, RESOLVE_VIEW, incident.id, {"impact": "x", "resolution": " "})

        assert body == {"response_action": "errors", "errors": {"resolution": "Say what fixed it."}}
        assert len(await bot.runtime.incident.list_open()) == 1


async def test_a_click_on_a_resolved_incident_opens_nothing_and_says_why(
    bot: BotDriver, slack: FakeSlack
) -> None:
    incident = await open_incident(bot)
    await bot.command(
        "resolve fixed", command="/incident", user="UCMD", channel=incident.channel_id
    )

    await bot.click(POST_UPDATE_ACTION, incident.id, user="UOTHER", channel=incident.channel_id)

    assert slack.of("views.open") == []
    reply = slack.responses[-1]
    assert reply["response_type"] == "ephemeral"
    assert "already resolved" in reply["text"]
    entry = (await bot.runtime.audit.recent())[0]
    assert (entry.actor, entry.action) == ("UOTHER", f"click post update {incident.id}")
    assert entry.outcome.startswith("refused: ")


async def test_an_expired_trigger_is_explained(bot: BotDriver, slack: FakeSlack) -> None:
    incident = await open_incident(bot)
    slack.fail_next("views.open", "expired_trigger_id")

    await bot.click(RESOLVE_ACTION, incident.id, user="UCMD", channel=incident.channel_id)

    assert "I could not open the form: Slack answered `expired_trigger_id`" in str(
        slack.responses[-1]["text"]
    )


async def test_every_click_and_submission_is_audited(bot: BotDriver) -> None:
    incident = await open_incident(bot)

    await bot.click(POST_UPDATE_ACTION, incident.id, user="UCMD", channel=incident.channel_id)
    await submit(bot, UPDATE_VIEW, incident.id, UPDATE)

    entries = await bot.runtime.audit.recent()
    assert [(e.action, e.outcome) for e in entries[:2]] == [
        (f"submit post update {incident.id}", "ok"),
        (f"click post update {incident.id}", "form opened"),
    ]


async def test_post_update_works_the_moment_the_alert_appears(
    bot: BotDriver, slack: FakeSlack
) -> None:
    """The incident is recorded before its alert is posted: a commander who clicks while Slack
    has shown the alert but not yet answered the bot gets the form, not "no incident"."""
    slack.answer_late("chat.postMessage", 1.0)
    declaring = asyncio.create_task(
        bot.command("p1 auth login failing", command="/incident", user="UCMD")
    )

    def alert_button() -> dict[str, Any] | None:
        for call in slack.of("chat.postMessage"):
            for block in call.get("blocks") or []:
                for element in block.get("elements") or []:
                    if element.get("action_id") == POST_UPDATE_ACTION:
                        return {"value": element["value"], "channel": call["channel"]}
        return None

    async with asyncio.timeout(10):
        while (button := alert_button()) is None:  # noqa: ASYNC110 - polls the local Slack
            await asyncio.sleep(0.01)

    await bot.click(POST_UPDATE_ACTION, button["value"], user="UCMD", channel=button["channel"])
    await declaring

    assert [v["view"] for v in slack.of("views.open")]
    assert not any("No incident" in str(r.get("text")) for r in slack.responses)
