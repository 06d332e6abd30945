"""Timed work fires once across replicas, also when the replica that armed it is dead."""

from __future__ import annotations

import asyncio

from pipeline.aws import BotoEcs
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.slack_api import FakeSlack
from tests.replicas.rig import Life, MakeReplica, ReplicaClock

MINUTE = 60.0


def reminders(slack: FakeSlack, room: str) -> list[str]:
    return [
        str(c["text"])
        for c in slack.of("chat.postMessage")
        if c["channel"] == room and str(c["text"]).startswith(("⏰", "🚨 <!channel>"))
    ]


async def test_a_reminder_due_while_its_replica_is_dead_fires_once_from_another(
    make_replica: MakeReplica, replica_clock: ReplicaClock, world: EcsWorld, slack: FakeSlack
) -> None:
    a, b, c = [await make_replica(f"replica-{n}", BotoEcs()) for n in "abc"]
    await a.driver.command(
        "p1 auth login failing", command="/incident", user="UCMD", channel="CGENERAL"
    )
    [incident] = await a.runtime.incident.list_open()
    assert incident.next_update_due_at is not None
    assert f"reminder:{incident.id}" in a.runtime.timers.armed
    assert f"reminder:{incident.id}" not in b.runtime.timers.armed

    a.cut_off(Life.DEAD)  # the replica that armed the reminder dies
    await replica_clock.pass_time((incident.next_update_due_at - replica_clock.now()).seconds + 1)

    # The survivors saw A's presence lapse and armed its timers from the database; both
    # fire them (and sweep) at the same moment.
    assert f"reminder:{incident.id}" in b.runtime.timers.armed
    assert f"reminder:{incident.id}" in c.runtime.timers.armed
    await asyncio.gather(
        b.runtime.timers.run_due(), c.runtime.timers.run_due(), b.runtime.sweep(), c.runtime.sweep()
    )
    await b.driver.settle()
    await c.driver.settle()

    [reminder] = reminders(slack, incident.channel_id)
    assert reminder.startswith("⏰ <@UCMD> no update for 15 minutes.")
    claims = await b.runtime.store.call(
        lambda db: db.execute(
            "SELECT owner, done FROM timer_claims WHERE key = ?", [f"reminder:{incident.id}"]
        ).fetchall()
    )
    assert len(claims) == 1
    assert claims[0][0] in ("replica-b", "replica-c")
    assert claims[0][1] == 1
