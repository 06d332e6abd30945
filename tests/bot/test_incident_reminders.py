"""Severity drives the clock: reminders at the cadence, reset by updates, escalated when
unanswered, stopped by resolve, never for P4, and exactly once across a restart.

Each reminder is a timer armed at its due time; `bot.runtime.timers.run_due()` fires the timers
that are due by the injected clock, as the scheduler does in real time.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.incident.views import POST_UPDATE_ACTION
from pipeline.kernel.config import Config
from tests.conftest import config_dict
from tests.driver import BotDriver
from tests.fakes.clock import FakeClock
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack

MINUTE = 60.0


@pytest.fixture
def config(health: FakeHealth) -> Config:
    data = config_dict(health)
    data["incidents"]["severities"] = {
        "p1": {
            "description": "Service down, all users affected",
            "response_time": "Immediate",
            "update_every": "15m",
            "escalate_to": ["S0LEADS"],
        },
        "p2": {
            "description": "Major feature broken",
            "response_time": "15 minutes",
            "update_every": "30m",
        },
        "p4": {"description": "Cosmetic issue", "response_time": "Next business day"},
    }
    return Config.model_validate(data)


async def declare(bot: BotDriver, severity: str = "p1") -> str:
    """Declare an incident; the war room's channel ID."""
    await bot.command(
        f"{severity} auth login failing", command="/incident", user="UCMD", channel="CGENERAL"
    )
    incidents = await bot.runtime.incident.list_open()
    return incidents[-1].channel_id


async def in_room(bot: BotDriver, room: str, text: str, user: str = "UCMD") -> dict[str, Any]:
    return await bot.command(text, command="/incident", user=user, channel=room)


def reminders(slack: FakeSlack, room: str) -> list[str]:
    return [
        str(c["text"])
        for c in slack.of("chat.postMessage")
        if c["channel"] == room and str(c["text"]).startswith(("⏰", "🚨 <!channel>"))
    ]


async def at_minute(bot: BotDriver, clock: FakeClock, start: Any, minute: float) -> None:
    """Move the clock to `minute` after `start` and fire the timers due by then."""
    target = start.timestamp() + minute * MINUTE
    clock.advance(target - clock.now().timestamp())
    await bot.runtime.timers.run_due()


async def test_the_first_p1_reminder_comes_at_minute_15_and_not_before(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    start = clock.now()
    room = await declare(bot)

    await at_minute(bot, clock, start, 14 + 59 / 60)
    before = reminders(slack, room)
    await at_minute(bot, clock, start, 15)

    assert before == []
    (reminder,) = reminders(slack, room)
    assert reminder.startswith("⏰ <@UCMD> no update for 15 minutes.")
    assert "Updates are due every 15 minutes" in reminder


async def test_the_reminder_carries_the_post_update_button(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    start = clock.now()
    room = await declare(bot)

    await at_minute(bot, clock, start, 15)

    post = [c for c in slack.of("chat.postMessage") if c["channel"] == room][-1]
    actions = next(b for b in post["blocks"] if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == [POST_UPDATE_ACTION]


async def test_sweeping_twice_at_the_same_moment_posts_one_reminder(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    start = clock.now()
    room = await declare(bot)

    await at_minute(bot, clock, start, 15)
    await bot.runtime.sweep()

    assert len(reminders(slack, room)) == 1


async def test_an_update_at_minute_10_moves_the_next_reminder_to_minute_25(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    start = clock.now()
    room = await declare(bot)
    await at_minute(bot, clock, start, 10)
    await in_room(bot, room, "update identified bad config pushed to auth-svc")

    await at_minute(bot, clock, start, 15)
    await at_minute(bot, clock, start, 24 + 59 / 60)
    early = reminders(slack, room)
    await at_minute(bot, clock, start, 25)

    assert early == []
    (reminder,) = reminders(slack, room)
    assert "no update for 15 minutes" in reminder


async def test_a_restart_between_the_update_and_the_reminder_yields_exactly_one(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    start = clock.now()
    room = await declare(bot)
    await at_minute(bot, clock, start, 10)
    await in_room(bot, room, "update identified bad config pushed to auth-svc")

    await bot.restart()
    await at_minute(bot, clock, start, 20)
    await at_minute(bot, clock, start, 25)
    await at_minute(bot, clock, start, 26)

    assert len(reminders(slack, room)) == 1


async def test_a_reminder_that_fell_due_while_the_bot_was_down_is_posted_once_at_start_up(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    start = clock.now()
    room = await declare(bot)
    await at_minute(bot, clock, start, 10)
    await in_room(bot, room, "update identified bad config pushed to auth-svc")
    await bot.stop()

    clock.advance(17 * MINUTE)  # minute 27: the minute-25 reminder was missed
    await bot.start()
    await bot.runtime.sweep()

    (reminder,) = reminders(slack, room)
    assert "no update for 17 minutes" in reminder


async def test_a_reminder_posted_late_escalates_only_a_full_interval_after_it(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    """Issue 16: the next reminder was due an interval after the missed due time, so one
    posted late at start-up was followed a second later by an escalation."""
    start = clock.now()
    room = await declare(bot)
    await bot.stop()
    clock.advance((29 + 59 / 60) * MINUTE)  # the minute-15 reminder was missed
    await bot.start()
    await bot.runtime.timers.run_due()
    late = reminders(slack, room)

    await at_minute(bot, clock, start, 30)
    await at_minute(bot, clock, start, 44 + 58 / 60)
    quiet = reminders(slack, room)
    await at_minute(bot, clock, start, 44 + 59 / 60)

    assert len(late) == 1
    assert late[0].startswith("⏰ <@UCMD> no update for 30 minutes.")
    assert quiet == late
    escalation = reminders(slack, room)[-1]
    assert escalation.startswith("🚨 <!channel> <!subteam^S0LEADS> This P1 has had no update")
    assert len(reminders(slack, room)) == 2


async def test_an_unanswered_reminder_escalates_to_the_channel_after_a_further_interval(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    start = clock.now()
    room = await declare(bot)
    await at_minute(bot, clock, start, 15)

    await at_minute(bot, clock, start, 29)
    not_yet = reminders(slack, room)
    await at_minute(bot, clock, start, 30)

    assert len(not_yet) == 1
    escalation = reminders(slack, room)[-1]
    assert escalation.startswith("🚨 <!channel> <!subteam^S0LEADS> This P1 has had no update")
    assert "for 30 minutes" in escalation
    assert "<@UCMD>" in escalation


async def test_an_update_after_a_reminder_calls_off_the_escalation(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    start = clock.now()
    room = await declare(bot)
    await at_minute(bot, clock, start, 15)
    await at_minute(bot, clock, start, 20)
    await in_room(bot, room, "update mitigating rolling back auth-svc")

    await at_minute(bot, clock, start, 30)
    await at_minute(bot, clock, start, 35)

    assert [r[:1] for r in reminders(slack, room)] == ["⏰", "⏰"]


async def test_resolving_posts_the_duration_and_no_reminder_follows(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    start = clock.now()
    room = await declare(bot)
    await at_minute(bot, clock, start, 47)
    before = len(reminders(slack, room))

    await in_room(bot, room, "resolve rolled auth-svc back to v1.2.0")
    await at_minute(bot, clock, start, 120)

    assert len(reminders(slack, room)) == before
    texts = [str(c["text"]) for c in slack.of("chat.postMessage") if c["channel"] == room]
    resolved = next(t for t in texts if t.startswith("✅ RESOLVED"))
    assert resolved == (
        "✅ RESOLVED: auth login failing incident\n"
        "- Duration: 47 minutes\n"
        "- Impact: auth login failing\n"
        "- Resolution: rolled auth-svc back to v1.2.0\n"
        "- Follow-up: Post-mortem to schedule; the timeline is in the war room."
    )


async def test_the_post_mortem_lists_the_timeline_and_the_time_to_resolve(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    start = clock.now()
    room = await declare(bot)
    await at_minute(bot, clock, start, 10)
    await in_room(bot, room, "update identified bad config")
    await at_minute(bot, clock, start, 25)
    await in_room(bot, room, "commander <@UDANA|dana>")
    await at_minute(bot, clock, start, 40)

    await in_room(bot, room, "resolve reverted the config", user="UDANA")

    post_mortem = str(slack.of("chat.postMessage")[-1]["text"])
    assert post_mortem.startswith("📝 *Post-mortem: P1 auth login failing*\n")
    assert "*Time to resolve:* 40 minutes" in post_mortem
    assert [line for line in post_mortem.splitlines() if line.startswith("• 09:")] == [
        "• 09:00 UTC Opened by <@UCMD>: P1: auth login failing",
        "• 09:10 UTC Status by <@UCMD>: investigating → identified",
        "• 09:10 UTC Update by <@UCMD>: identified: bad config (ETA Unknown)",
        "• 09:25 UTC Reminder: no update for 15 min",
        "• 09:25 UTC Commander by <@UCMD>: <@UCMD> → <@UDANA>",
        "• 09:40 UTC Escalated: no update for 30 min",
        "• 09:40 UTC Resolved by <@UDANA>: reverted the config",
    ]


async def test_a_p4_never_reminds(bot: BotDriver, slack: FakeSlack, clock: FakeClock) -> None:
    start = clock.now()
    room = await declare(bot, "p4")

    for minute in (15, 30, 60, 24 * 60):
        await at_minute(bot, clock, start, minute)

    assert reminders(slack, room) == []
    (incident,) = await bot.runtime.incident.list_open()
    assert incident.next_update_due_at is None


async def test_a_p2_reminds_every_30_minutes(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    start = clock.now()
    room = await declare(bot, "p2")

    await at_minute(bot, clock, start, 29)
    early = reminders(slack, room)
    await at_minute(bot, clock, start, 30)

    assert early == []
    assert len(reminders(slack, room)) == 1


async def test_reminders_mention_the_new_commander_after_a_hand_over(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    start = clock.now()
    room = await declare(bot)
    await in_room(bot, room, "commander <@UDANA|dana>")

    await at_minute(bot, clock, start, 15)

    assert reminders(slack, room)[0].startswith("⏰ <@UDANA> no update")
    assert slack.of("conversations.setTopic")[-1]["topic"].endswith("Commander: <@UDANA>")
    assert slack.of("conversations.invite")[-1]["users"] == "UDANA"
    handed = [str(c["text"]) for c in slack.of("chat.postMessage") if "👑" in str(c["text"])]
    assert handed[0] == "👑 <@UDANA> is now the incident commander, taking over from <@UCMD>."


async def test_updates_and_the_resolution_go_to_the_announcement_thread(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    room = await declare(bot)
    announcement_ts = (await bot.runtime.incident.list_open())[0].announce_ts

    await in_room(bot, room, "update mitigating rolling back auth-svc")
    await in_room(bot, room, "resolve rolled back")

    thread = [
        str(c["text"])
        for c in slack.of("chat.postMessage")
        if c["channel"] == "CINCIDENTS" and c.get("thread_ts") == announcement_ts
    ]
    assert [t.splitlines()[0] for t in thread] == [
        "📍 UPDATE: auth login failing incident",
        "✅ RESOLVED: auth login failing incident",
    ]
    assert thread[0] == (
        "📍 UPDATE: auth login failing incident\n"
        "- Status: Mitigating\n"
        "- Action: rolling back auth-svc\n"
        "- ETA: Unknown\n"
        "- Impact: auth login failing"
    )


async def test_list_shows_open_incidents_with_severity_age_and_last_update(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    start = clock.now()
    room = await declare(bot)
    await at_minute(bot, clock, start, 10)
    await in_room(bot, room, "update identified bad config")
    await at_minute(bot, clock, start, 25)

    reply = await bot.command("list", command="/incident", user="UOTHER", channel="CGENERAL")

    assert reply["body"]["response_type"] == "ephemeral"
    assert reply["body"]["text"] == (
        "*Open incidents*\n"
        f"• *P1* <#{room}> auth login failing · open 25 minutes · last update 15 minutes ago "
        "(identified) · commander <@UCMD>"
    )
