"""The declare form (issue 18, point 3): `/incident` (or `/incident declare`) opens a modal with
the command's trigger; its submission declares as `/incident p1 …` does, with the services
picked stored and frozen. Signed requests and the strict local Slack (which checks the modal
as real Slack does), the opened view submitted back as Slack sends it."""

from __future__ import annotations

from typing import Any

from bot.incident.views import DECLARE_VIEW, declare_modal
from commands.exchange import Submission, read_form_metadata
from commands.incident.parse import Declare, parse_declare_form
from commands.incident.replies import DeclareFormView, SeverityChoice
from pipeline.kernel.config import Config
from sandbox.slack.limits import check_view
from tests.driver import BotDriver
from tests.fakes.slack_api import FakeSlack


def opened_view(slack: FakeSlack) -> dict[str, Any]:
    """The modal the bot opened last, as Slack shows it (with its id)."""
    view = list(slack.workspace.views.values())[-1]
    return slack.workspace.render_view(view)


def block(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


def values(severity: str | None, summary: str, services: tuple[str, ...] = ()) -> dict[str, Any]:
    """The state Slack sends with a submission of the declare form."""
    picked = {"value": severity} if severity else None
    return {
        "severity": {"value": {"type": "static_select", "selected_option": picked}},
        "summary": {"value": {"type": "plain_text_input", "value": summary}},
        "services": {
            "value": {
                "type": "multi_static_select",
                "selected_options": [
                    {"value": s, "text": {"type": "plain_text", "text": s}} for s in services
                ],
            }
        },
    }


async def submit(
    bot: BotDriver, view: dict[str, Any], state: dict[str, Any], *, user: str = "UCMD"
) -> Any:
    ack = await bot.send.view_submission(view, state, user=user)
    await bot.settle()
    assert ack.status == 200
    return ack.body


def private_replies(slack: FakeSlack, user: str) -> list[str]:
    return [e.text for e in slack.workspace.ephemerals if e.user == user]


async def test_incident_alone_opens_the_declare_form_with_the_commands_trigger(
    bot: BotDriver, slack: FakeSlack
) -> None:
    reply = await bot.command(
        "", command="/incident", user="UCMD", channel="CGENERAL", trigger_id="T-declare"
    )

    (call,) = slack.of("views.open")
    assert call["trigger_id"] == "T-declare"
    view = opened_view(slack)
    assert view["callback_id"] == DECLARE_VIEW
    assert read_form_metadata(view["private_metadata"]) == ("new", "CGENERAL")
    severity = block(view, "severity")["element"]
    assert [o["value"] for o in severity["options"]] == ["p1", "p2", "p3", "p4"]
    assert severity["options"][0]["text"]["text"] == "P1 · Service down, all users affected"
    assert "initial_option" not in severity
    services = block(view, "services")["element"]
    assert services["type"] == "multi_static_select"
    assert [o["value"] for o in services["options"]] == ["api-gateway", "auth-svc", "market-svc"]
    assert (
        "freezes deploys of these services to production" in block(view, "services")["hint"]["text"]
    )
    assert reply["body"] == ""
    assert await bot.runtime.incident.list_open() == []
    assert (await bot.runtime.audit.recent())[0].outcome == "form opened"


async def test_incident_declare_with_a_severity_and_summary_prefills_the_form(
    bot: BotDriver, slack: FakeSlack
) -> None:
    await bot.command("declare P1 auth login failing", command="/incident", user="UCMD")

    view = opened_view(slack)
    assert block(view, "severity")["element"]["initial_option"]["value"] == "p1"
    assert block(view, "summary")["element"]["initial_value"] == "auth login failing"


async def test_a_submitted_form_declares_with_the_services_picked(
    bot: BotDriver, slack: FakeSlack
) -> None:
    await bot.command("", command="/incident", user="UCMD", channel="CGENERAL")
    view = opened_view(slack)

    body = await submit(bot, view, values("p1", "logins fail", ("auth-svc", "market-svc")))

    assert body is None
    [incident] = await bot.runtime.incident.list_open()
    assert (incident.severity, incident.summary) == ("p1", "logins fail")
    assert incident.services == ("auth-svc", "market-svc")
    assert incident.commander == "UCMD"
    assert incident.declared_in == "CGENERAL"
    room = slack.workspace.channel(incident.channel_id)
    assert room.name.endswith("logins-fail")
    alert = room.messages[0]
    assert alert.text.startswith("🚨 INCIDENT: logins fail")
    assert "Services: `auth-svc`, `market-svc`" in str(alert.blocks)
    assert any("P1 declared. War room: <#" in t for t in private_replies(slack, "UCMD"))
    assert slack.workspace.views == {}


async def test_one_service_picked_heads_the_alert(bot: BotDriver, slack: FakeSlack) -> None:
    await bot.command("", command="/incident", user="UCMD")

    await submit(bot, opened_view(slack), values("p2", "checkout errors", ("market-svc",)))

    [incident] = await bot.runtime.incident.list_open()
    assert incident.service == "market-svc"
    alert = slack.workspace.channel(incident.channel_id).messages[0]
    assert alert.text.startswith("🚨 INCIDENT: market-svc experiencing issues")


async def test_the_services_picked_freeze_their_deploys_until_resolved(
    bot: BotDriver, slack: FakeSlack
) -> None:
    """The summary names no service: the freeze comes from the form's field alone."""
    await bot.command("", command="/incident", user="UCMD", channel="CGENERAL")
    await submit(bot, opened_view(slack), values("p1", "logins fail", ("auth-svc",)))
    [incident] = await bot.runtime.incident.list_open()

    await bot.command("production auth-svc", user="UDEV")
    refused = slack.responses[-1]["text"]
    await bot.command(
        "resolve fixed", command="/incident", user="UCMD", channel=incident.channel_id
    )
    await bot.command("production auth-svc", user="UDEV")

    assert f"frozen by P1 `{incident.id}`" in refused
    assert f"#{incident.channel_name}" in refused
    room = [m.text for m in slack.workspace.channel(incident.channel_id).messages]
    assert any("<@UDEV> asked to deploy `auth-svc` to production" in t for t in room)
    cards = [
        c
        for c in slack.of("chat.postMessage")
        if (c.get("metadata") or {}).get("event_type") == "chatops_deploy_card"
    ]
    assert len(cards) == 1


async def test_the_services_survive_a_restart(bot: BotDriver, slack: FakeSlack) -> None:
    await bot.command("", command="/incident", user="UCMD")
    await submit(bot, opened_view(slack), values("p2", "slow", ("api-gateway",)))

    await bot.restart()

    [incident] = await bot.runtime.incident.list_open()
    assert incident.services == ("api-gateway",)


async def test_a_bad_submission_answers_errors_on_its_fields_and_declares_nothing(
    bot: BotDriver, slack: FakeSlack
) -> None:
    await bot.command("", command="/incident", user="UCMD")
    view = opened_view(slack)
    channels = len(slack.workspace.channels)

    body = await submit(bot, view, values(None, "   ", ("auth-svc", "ghost-svc")))

    assert body["response_action"] == "errors"
    assert body["errors"] == {
        "severity": "Pick a severity: P1, P2, P3, P4.",
        "summary": "Say what is broken; a sentence is enough.",
        "services": "Not a configured service: ghost-svc. The services are api-gateway, "
        "auth-svc, market-svc.",
    }
    assert await bot.runtime.incident.list_open() == []
    assert len(slack.workspace.channels) == channels
    assert view["id"] in slack.workspace.views
    entry = (await bot.runtime.audit.recent())[0]
    assert entry.action == "submit declare incident new"
    assert entry.outcome.startswith("refused: Pick a severity")


async def test_a_form_slack_will_not_open_is_explained_privately(
    bot: BotDriver, slack: FakeSlack
) -> None:
    slack.fail_next("views.open", "expired_trigger_id")

    await bot.command("declare", command="/incident", user="UCMD", channel="CGENERAL")

    said = slack.responses[-1]
    assert said["response_type"] == "ephemeral"
    assert "I could not open the form: Slack answered `expired_trigger_id`" in said["text"]
    assert "You typed `/incident declare`." in said["text"]


async def test_typed_declarations_and_help_are_unchanged(bot: BotDriver, slack: FakeSlack) -> None:
    await bot.command("p1 auth-svc login failing", command="/incident", user="UCMD")
    helped = await bot.command("help", command="/incident", user="UCMD")

    [incident] = await bot.runtime.incident.list_open()
    assert (incident.severity, incident.service, incident.services) == ("p1", "auth-svc", ())
    assert "`/incident [declare]`" in helped["body"]["text"]
    assert slack.of("views.open") == []


def test_more_services_than_slack_lists_are_typed_and_the_modal_stays_valid() -> None:
    """Slack lists at most 100 options of at most 75 characters: past that, a text field."""
    many = tuple(f"svc-{n:03d}" for n in range(120))
    form = DeclareFormView(
        severities=(SeverityChoice("p1", "Service down, all users affected"),),
        services=many,
        environment="production",
        channel_id="CGENERAL",
        severity="p1",
        summary="x" * 4000,
        chosen=("svc-007", "svc-110"),
    )

    view = declare_modal(form)

    check_view(view)
    services = block(view, "services")["element"]
    assert services["type"] == "plain_text_input"
    assert services["initial_value"] == "svc-007, svc-110"
    assert len(block(view, "summary")["element"]["initial_value"]) == 500


def test_typed_services_are_read_and_checked(config: Config) -> None:
    def sent(services: str) -> Submission:
        return Submission(
            callback_id=DECLARE_VIEW,
            user_id="UCMD",
            subject="new",
            channel_id="CGENERAL",
            fields={"severity": "p2", "summary": "slow", "services": services},
        )

    assert parse_declare_form(sent(" auth-svc,market-svc  auth-svc"), config) == Declare(
        "p2", "slow", ("auth-svc", "market-svc")
    )
    assert set(parse_declare_form(sent("auth-svc, billing"), config)) == {"services"}
