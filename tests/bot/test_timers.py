"""Timed work is a timer per due item: armed at its due time, moved, removed, re-armed on start.

The injected clock drives `Timers.run_due()`; one test runs the real APScheduler in real time.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.timers import Timers
from pipeline.kernel.clock import SystemClock
from store.incident.models import EventKind
from tests.driver import BotDriver, plan_cards, run_id_of
from tests.fakes.clock import FakeClock
from tests.fakes.slack_api import FakeSlack

FIFTEEN_MIN = timedelta(minutes=15)


async def _declare(bot: BotDriver) -> str:
    await bot.command("p1 auth login failing", command="/incident", user="UCMD", channel="CGEN")
    (incident,) = await bot.runtime.incident.list_open()
    return incident.id


def _reminders(slack: FakeSlack) -> list[dict[str, object]]:
    return [c for c in slack.of("chat.postMessage") if str(c.get("text", "")).startswith("⏰")]


async def test_a_declared_p1_arms_its_reminder_at_minute_15(
    bot: BotDriver, clock: FakeClock
) -> None:
    start = clock.now()

    incident_id = await _declare(bot)

    assert bot.runtime.timers.armed[f"reminder:{incident_id}"] == start + FIFTEEN_MIN


async def test_the_reminder_is_posted_at_its_due_time_and_not_a_second_before(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    incident_id = await _declare(bot)
    due = bot.runtime.timers.armed[f"reminder:{incident_id}"]

    clock.advance((due - clock.now()).total_seconds() - 1)
    early = await bot.runtime.timers.run_due()
    clock.advance(1)
    on_time = await bot.runtime.timers.run_due()

    assert (early, on_time) == ([], [f"reminder:{incident_id}"])
    assert len(_reminders(slack)) == 1
    events = await bot.runtime.incident.timeline(incident_id)
    assert [e.at for e in events if e.kind is EventKind.REMINDER] == [due]
    assert bot.runtime.timers.armed[f"reminder:{incident_id}"] == due + FIFTEEN_MIN


async def test_an_update_moves_the_reminder_and_resolving_removes_it(
    bot: BotDriver, clock: FakeClock
) -> None:
    incident_id = await _declare(bot)
    (incident,) = await bot.runtime.incident.list_open()
    clock.advance(600)

    await bot.command(
        "update identified bad config",
        command="/incident",
        user="UCMD",
        channel=incident.channel_id,
    )
    moved = bot.runtime.timers.armed[f"reminder:{incident_id}"]
    await bot.command(
        "resolve reverted it", command="/incident", user="UCMD", channel=incident.channel_id
    )

    assert moved == clock.now() + FIFTEEN_MIN
    assert f"reminder:{incident_id}" not in bot.runtime.timers.armed


async def test_timers_are_rearmed_from_the_database_after_a_restart(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    incident_id = await _declare(bot)
    await bot.command("production api-gateway", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[-1])
    before = bot.runtime.timers.armed

    await bot.restart()

    after = bot.runtime.timers.armed
    assert after[f"reminder:{incident_id}"] == before[f"reminder:{incident_id}"]
    assert after[f"approval:{run_id}"] == before[f"approval:{run_id}"]
    run = await bot.runtime.runs.get(run_id)
    assert after[f"approval:{run_id}"] == run.approval_due_at


async def test_the_scheduler_fires_a_timer_within_two_seconds_of_its_due_time() -> None:
    """Real time, real APScheduler: the one place the bot's timers meet the wall clock."""
    fired: list[datetime] = []
    done = asyncio.Event()
    clock = SystemClock()
    timers = Timers(clock)

    async def fire(key: str) -> None:
        fired.append(clock.now())
        done.set()

    timers.on_fire(fire)
    scheduler = AsyncIOScheduler(timezone="UTC")
    timers.attach(scheduler)
    scheduler.start()
    try:
        due = clock.now() + timedelta(seconds=0.3)
        timers.arm("reminder:x", due)
        await asyncio.wait_for(done.wait(), timeout=5)
    finally:
        scheduler.shutdown(wait=False)

    late_s = (fired[0] - due).total_seconds()
    assert 0 <= late_s < 2


async def test_a_disarmed_timer_never_fires() -> None:
    clock = FakeClock()
    timers = Timers(clock)
    fired: list[str] = []

    async def fire(key: str) -> None:
        fired.append(key)

    timers.on_fire(fire)
    timers.arm("approval:a", clock.now())
    timers.arm("approval:b", clock.now())
    timers.disarm("approval:a")

    assert await timers.run_due() == ["approval:b"]
    assert fired == ["approval:b"]


async def test_a_reminder_slack_accepted_before_the_bot_died_is_not_posted_twice(
    bot: BotDriver, slack: FakeSlack, clock: FakeClock
) -> None:
    """Slack takes the reminder, the answer never comes back, the process dies; the next
    process finds the reminder in the war room's history instead of posting it again."""
    incident_id = await _declare(bot)
    clock.advance(15 * 60)
    slack.accept_then_fail("chat.postMessage", hang=True)
    firing = asyncio.create_task(bot.runtime.timers.run_due())
    for _ in range(500):
        if _reminders(slack):
            break
        await asyncio.sleep(0.01)
    assert len(_reminders(slack)) == 1

    firing.cancel()
    await asyncio.gather(firing, return_exceptions=True)
    await bot.restart()

    (incident,) = await bot.runtime.incident.list_open()
    room = slack.workspace.channel(incident.channel_id)
    shown = [m for m in room.messages if m.text.startswith("⏰")]
    assert len(shown) == 1
    assert incident.next_update_due_at == clock.now() + FIFTEEN_MIN
    assert bot.runtime.timers.armed[f"reminder:{incident_id}"] == incident.next_update_due_at
    assert [e.kind for e in await bot.runtime.incident.timeline(incident_id)][-1] is (
        EventKind.REMINDER
    )
