"""`/incident p1 ...` through signed requests and the fake Slack API: the war room, its topic,
invites, pinned alert, suspects and announcement; name collisions; Slack failures.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.incident.views import POST_UPDATE_ACTION, RESOLVE_ACTION
from pipeline.kernel.config import Config
from store.deploy.models import Deployment, DeploymentId, DeploymentState, Target, TargetStatus
from store.deploy.repository import Deployments
from store.incident.repository import Incidents
from tests.conftest import config_dict
from tests.driver import BotDriver
from tests.fakes.clock import FakeClock
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack

NAME = "inc-20261122-auth-login-failing"


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
        "p4": {"description": "Cosmetic issue", "response_time": "Next business day"},
    }
    return Config.model_validate(data)


async def declare(bot: BotDriver, text: str = "p1 auth login failing") -> dict[str, Any]:
    return await bot.command(text, command="/incident", user="UCMD", channel="CGENERAL")


def war_room(slack: FakeSlack, name: str = NAME) -> str:
    return next(cid for cid, n in slack.channels.items() if n == name)


def posts_in(slack: FakeSlack, channel: str) -> list[dict[str, Any]]:
    return [c for c in slack.of("chat.postMessage") if c["channel"] == channel]


async def test_a_p1_opens_a_war_room_named_from_the_date_and_summary(
    bot: BotDriver, slack: FakeSlack
) -> None:
    reply = await declare(bot)

    assert reply["status"] == 200
    assert [c["name"] for c in slack.of("conversations.create")] == [NAME]
    assert slack.of("conversations.create")[0]["is_private"] in (False, "false", "0")


async def test_the_topic_names_severity_summary_and_commander(
    bot: BotDriver, slack: FakeSlack
) -> None:
    await declare(bot)

    (topic,) = slack.of("conversations.setTopic")
    assert topic["channel"] == war_room(slack)
    assert topic["topic"] == "P1 · auth login failing · Commander: <@UCMD>"


async def test_the_requester_and_the_responders_are_invited_with_groups_resolved(
    bot: BotDriver, slack: FakeSlack
) -> None:
    at_start = len(slack.of("usergroups.users.list"))  # the start-up check of the config

    await declare(bot)

    asked = slack.of("usergroups.users.list")[at_start:]
    assert [c["usergroup"] for c in asked] == ["S0LEADS"]
    (invite,) = slack.of("conversations.invite")
    assert invite["channel"] == war_room(slack)
    assert invite["users"] == "UCMD,UONCALL1,ULEAD1,ULEAD2"


async def test_the_initial_alert_uses_the_runbook_template_and_is_pinned(
    bot: BotDriver, slack: FakeSlack
) -> None:
    await declare(bot)

    alert = posts_in(slack, war_room(slack))[0]
    assert alert["text"] == (
        "🚨 INCIDENT: auth login failing\n"
        "- Impact: auth login failing\n"
        "- Status: Investigating\n"
        "- ETA: Unknown"
    )
    buttons = next(b for b in alert["blocks"] if b["type"] == "actions")["elements"]
    assert [b["action_id"] for b in buttons] == [POST_UPDATE_ACTION, RESOLVE_ACTION]
    assert "Commander: <@UCMD>" in str(alert["blocks"])
    (pin,) = slack.of("pins.add")
    (incident,) = await bot.runtime.incident.list_open()
    assert pin == {"channel": war_room(slack), "timestamp": incident.alert_ts}


async def test_a_named_service_heads_the_alert(bot: BotDriver, slack: FakeSlack) -> None:
    await declare(bot, "p1 auth-svc rejects every login")

    alert = posts_in(slack, war_room(slack, "inc-20261122-auth-svc-rejects-every-login"))[0]
    assert alert["text"].startswith("🚨 INCIDENT: auth-svc experiencing issues\n")
    assert "- Impact: auth-svc rejects every login" in alert["text"]


async def test_the_incident_is_announced_in_the_incidents_channel_linking_the_war_room(
    bot: BotDriver, slack: FakeSlack
) -> None:
    await declare(bot)

    (announcement,) = posts_in(slack, "CINCIDENTS")
    assert announcement["text"].startswith("🚨 INCIDENT: auth login failing\n")
    assert f"- War room: <#{war_room(slack)}>" in announcement["text"]
    assert "thread_ts" not in announcement


async def test_the_requester_is_told_privately_that_they_command_it(
    bot: BotDriver, slack: FakeSlack
) -> None:
    await declare(bot)

    reply = slack.responses[-1]
    assert reply["response_type"] == "ephemeral"
    assert f"War room: <#{war_room(slack)}>" in reply["text"]
    assert "You are the incident commander" in reply["text"]
    incident = (await bot.runtime.incident.list_open())[0]
    assert (incident.commander, incident.severity) == ("UCMD", "p1")


async def test_recent_deploys_to_the_incident_environment_are_listed_as_suspects(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    repo = Deployments(bot.runtime.store)
    await repo.create(_finished("recent", "production", clock, minutes_ago=30))
    await repo.create(_finished("old", "production", clock, minutes_ago=150))
    await repo.create(_finished("staging", "staging", clock, minutes_ago=10))
    await repo.create(
        _finished("cancelled", "production", clock, minutes_ago=5, state=DeploymentState.CANCELLED)
    )

    await declare(bot)

    blocks = str(posts_in(slack, war_room(slack))[0]["blocks"])
    assert "Suspects: deploys to production in the last 2h" in blocks
    assert "`auth-svc` v1.2.0 → v1.3.0 by <@UDEV> at 08:30 UTC (succeeded, `recent`)" in blocks
    for other in ("`old`", "`staging`", "`cancelled`"):
        assert other not in blocks


async def test_a_suspect_service_a_rollback_took_back_is_said_rolled_back(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    run = _finished("recent", "production", clock, minutes_ago=30)
    api = run.targets[0].model_copy(update={"service": "api-gateway"})
    repo = Deployments(bot.runtime.store)
    await repo.create(run.model_copy(update={"targets": (*run.targets, api)}))
    await repo.mark_reverted("recent", services=["auth-svc"], by="rb-1", at=clock.now())

    await declare(bot)

    blocks = str(posts_in(slack, war_room(slack))[0]["blocks"])
    assert "`auth-svc` v1.2.0 → v1.3.0 by <@UDEV> at 08:30 UTC (rolled back, `recent`)" in blocks
    assert "`api-gateway` v1.2.0 → v1.3.0 by <@UDEV> at 08:30 UTC (succeeded, `recent`)" in blocks


async def test_two_suspect_deploys_that_can_be_rolled_back_each_get_a_button_slack_takes(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    """Issue 16: two Roll back buttons with one action_id in a block made Slack refuse the
    alert (`invalid_blocks`), so no incident could be declared."""
    repo = Deployments(bot.runtime.store)
    await repo.create(_finished("first", "production", clock, minutes_ago=30))
    await repo.create(_finished("second", "production", clock, minutes_ago=20))

    await declare(bot)

    (incident,) = await bot.runtime.incident.list_open()
    alert = posts_in(slack, war_room(slack))[0]
    rollbacks = [
        e
        for b in alert["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["text"]["text"].startswith("Roll back")
    ]
    assert sorted(e["text"]["text"] for e in rollbacks) == ["Roll back first", "Roll back second"]
    assert len({e["action_id"] for e in rollbacks}) == 2
    assert incident.alert_ts is not None
    assert "You are the incident commander" in slack.responses[-1]["text"]


async def test_no_recent_deploys_says_so(bot: BotDriver, slack: FakeSlack) -> None:
    await declare(bot)

    blocks = str(posts_in(slack, war_room(slack))[0]["blocks"])
    assert "Suspects: deploys to production in the last 2h*\\nNone." in blocks


def _finished(
    run_id: str,
    environment: str,
    clock: FakeClock,
    *,
    minutes_ago: int,
    state: DeploymentState = DeploymentState.SUCCEEDED,
) -> Deployment:
    at = clock.now() - timedelta(minutes=minutes_ago)
    return Deployment(
        id=DeploymentId(run_id),
        environment=environment,
        requested_by="UDEV",
        version="v1.3.0",
        state=state,
        stage=None,
        required_approvals=0,
        channel_id="CDEPLOYS",
        message_ts=None,
        created_at=at - timedelta(minutes=10),
        updated_at=at,
        approval_due_at=None,
        started_at=at - timedelta(minutes=9),
        finished_at=at,
        error=None,
        targets=(
            Target(
                service="auth-svc",
                current_version="v1.2.0",
                target_version="v1.3.0",
                status=TargetStatus.HEALTHY,
            ),
        ),
    )


class TestNameCollisions:
    async def test_a_taken_name_gets_the_suffix_2(self, bot: BotDriver, slack: FakeSlack) -> None:
        slack.channels["CEXISTING"] = NAME

        await declare(bot)

        assert [c["name"] for c in slack.of("conversations.create")] == [NAME, f"{NAME}-2"]
        incident = (await bot.runtime.incident.list_open())[0]
        assert incident.channel_name == f"{NAME}-2"

    async def test_the_same_summary_twice_in_a_day_opens_two_rooms(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        await declare(bot)
        await declare(bot)
        await declare(bot)

        names = sorted(i.channel_name for i in await bot.runtime.incident.list_open())
        assert names == [NAME, f"{NAME}-2", f"{NAME}-3"]

    async def test_a_suffix_keeps_the_name_within_80_characters(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        summary = "x" * 100
        long_name = f"inc-20261122-{'x' * 67}"
        slack.channels["CEXISTING"] = long_name

        await declare(bot, f"p1 {summary}")

        created = [c["name"] for c in slack.of("conversations.create")]
        assert created == [long_name, f"inc-20261122-{'x' * 65}-2"]
        assert all(len(n) <= 80 for n in created)


class TestSlackFailures:
    async def test_missing_scope_on_create_is_explained_and_nothing_is_recorded(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        slack.fail_next("conversations.create", "missing_scope")

        await declare(bot)

        reply = slack.responses[-1]
        assert reply["response_type"] == "ephemeral"
        assert "the Slack app lacks the permission (`missing_scope`)" in reply["text"]
        assert "nothing was recorded" in reply["text"]
        assert await bot.runtime.incident.list_open() == []
        assert slack.of("chat.postMessage") == []

    async def test_a_retry_after_a_failed_create_works(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        slack.fail_next("conversations.create", "missing_scope")
        await declare(bot)

        await declare(bot)

        (incident,) = await bot.runtime.incident.list_open()
        assert incident.channel_name == NAME

    async def test_an_alert_slack_refuses_archives_the_room_and_records_nothing(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        slack.fail_next("chat.postMessage", "channel_not_found")

        await declare(bot)

        reply = slack.responses[-1]
        assert reply["response_type"] == "ephemeral"
        assert "nothing was recorded" in reply["text"]
        assert [c["channel"] for c in slack.of("conversations.archive")] == [war_room(slack)]
        assert await bot.runtime.incident.list_open() == []
        assert await Incidents(bot.runtime.store).by_channel(war_room(slack)) is None

        await declare(bot)

        (incident,) = await bot.runtime.incident.list_open()
        assert incident.alert_ts is not None

    async def test_an_unknown_responder_does_not_stop_a_p1_and_the_commander_is_told(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        slack.unknown_users.add("UONCALL1")

        await declare(bot)

        (incident,) = await bot.runtime.incident.list_open()
        room = war_room(slack)
        assert slack.workspace.channel(room).members == ["UBOT", "UCMD", "ULEAD1", "ULEAD2"]
        told = [c["text"] for c in posts_in(slack, room) if "could not invite" in c["text"]]
        assert len(told) == 1
        assert "<@UCMD> I could not invite 1 responder" in told[0]
        assert "<@UONCALL1>: Slack answered `user_not_found`" in told[0]
        assert "1 responder could not be invited" in slack.responses[-1]["text"]
        assert slack.of("conversations.archive") == []
        assert incident.channel_id == room

    async def test_a_pin_that_fails_still_opens_the_incident_with_a_warning(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        slack.fail_next("pins.add", "not_in_channel")

        await declare(bot)

        reply = slack.responses[-1]["text"]
        assert "You are the incident commander" in reply
        assert "⚠️ I could not pin the initial alert: I am not in that channel" in reply
        assert len(await bot.runtime.incident.list_open()) == 1

    async def test_every_declaration_and_its_outcome_is_audited(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        slack.fail_next("conversations.create", "restricted_action")
        await declare(bot)
        await declare(bot)

        entries = await bot.runtime.audit.recent()

        incident = (await bot.runtime.incident.list_open())[0]
        assert [(e.action, e.actor, e.channel_id) for e in entries] == [
            ("/incident p1 auth login failing", "UCMD", "CGENERAL")
        ] * 2
        assert entries[0].outcome == "ok"
        assert entries[0].detail == incident.id
        assert entries[1].outcome.startswith("failed: I could not create the war-room channel")
        assert "`restricted_action`" in entries[1].outcome
