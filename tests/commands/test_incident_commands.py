"""IncidentCommands against an in-memory chat and a real SQLite store: all-or-nothing
declaration, and reminders that are neither lost nor doubled when posting fails or a process dies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from bot.timers import Timers
from commands.access import Access
from commands.incident.parse import Declare
from commands.incident.reminders import Reminders
from commands.incident.usecases import IncidentCommands
from pipeline.kernel.config import Config
from pipeline.kernel.errors import ChatOpsError, UpstreamError
from pipeline.kernel.ports import NotInvited, Reminder
from store.db import Store
from store.deploy.models import Deployment
from store.deploy.repository import Deployments
from store.incident.models import EventKind, Incident, IncidentEvent, IncidentStatus
from store.incident.repository import Incidents
from tests.fakes.clock import FakeClock

MINUTE = 60.0


@dataclass
class FakeIncidentChat:
    """Records what would reach Slack; `fail` makes the named step raise once."""

    fail: set[str] = field(default_factory=set)
    calls: list[tuple[str, object]] = field(default_factory=list)
    reminders: list[Reminder] = field(default_factory=list)
    groups: dict[str, frozenset[str]] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)
    room: set[str] = field(default_factory=set)  # who `in_room` finds in the war room

    async def members_of(self, group_id: str) -> frozenset[str]:
        """The Directory port, for the user groups among the responders."""
        self._step("members_of", group_id)
        return self.groups.get(group_id, frozenset())

    def _step(self, name: str, detail: object = None) -> None:
        self.calls.append((name, detail))
        if name in self.fail:
            self.fail.discard(name)
            raise UpstreamError(f"I could not {name}: Slack answered `boom`.")

    def names(self) -> list[str]:
        return [n for n, _ in self.calls]

    async def create_channel(self, name: str) -> tuple[str, str]:
        self._step("create_channel", name)
        return "CWAR", name

    async def archive_channel(self, channel_id: str) -> None:
        self._step("archive_channel", channel_id)

    async def set_topic(self, incident: Incident) -> None:
        self._step("set_topic")

    async def invite(self, channel_id: str, user_ids: Sequence[str]) -> list[NotInvited]:
        self._step("invite", list(user_ids))
        return [NotInvited(u, "user_not_found") for u in user_ids if u in self.unknown]

    async def tell_commander(self, incident: Incident, not_invited: Sequence[NotInvited]) -> None:
        self._step("tell_commander", [n.user_id for n in not_invited])

    async def post_alert(self, incident: Incident, suspects: Sequence[Deployment]) -> str:
        self._step("post_alert", [s.id for s in suspects])
        return "1.1"

    async def pin(self, channel_id: str, ts: str) -> None:
        self._step("pin", ts)

    async def announce(self, incident: Incident) -> str:
        self._step("announce")
        return "1.2"

    async def post_update(self, incident: Incident) -> None:
        self._step("post_update")

    async def post_resolved(self, incident: Incident, timeline: Sequence[IncidentEvent]) -> None:
        self._step("post_resolved", [e.kind for e in timeline])

    async def post_reminder(self, incident: Incident, reminder: Reminder) -> None:
        if "post_reminder_lost_answer" in self.fail:
            # Slack took the message, but its answer never arrived.
            self.reminders.append(reminder)
            self._step("post_reminder_lost_answer")
        self._step("post_reminder")
        self.reminders.append(reminder)

    async def reminder_posted(self, incident: Incident, reminder: Reminder) -> bool:
        self._step("reminder_posted", reminder.key)
        return any(r.key == reminder.key for r in self.reminders)

    async def commander_changed(self, incident: Incident, previous: str) -> None:
        self._step("commander_changed", previous)

    async def in_room(self, channel_id: str, user_id: str) -> bool:
        self._step("in_room", user_id)
        return user_id in self.room

    async def redraw(self, incident: Incident, suspects: Sequence[Deployment]) -> None:
        self._step("redraw", incident.status)


@dataclass
class World:
    store: Store
    chat: FakeIncidentChat
    clock: FakeClock
    incidents: Incidents
    config: Config
    timers: Timers

    def commands(self) -> IncidentCommands:
        """A fresh IncidentCommands, as a restarted process would build it."""
        return IncidentCommands(
            config=self.config,
            incidents=self.incidents,
            deployments=Deployments(self.store),
            chat=self.chat,
            access=Access(self.chat),
            reminders=self.reminders(),
            clock=self.clock,
        )

    def reminders(self) -> Reminders:
        """Fresh Reminders, as a restarted process would build them."""
        return Reminders(
            config=self.config,
            incidents=self.incidents,
            chat=self.chat,
            timers=self.timers,
            clock=self.clock,
        )


@pytest.fixture
async def world(database: Path | str, config: Config) -> AsyncIterator[World]:
    store = await Store.open(database)
    clock = FakeClock()
    yield World(store, FakeIncidentChat(), clock, Incidents(store), config, Timers(clock))
    await store.close()


async def _declare(cmds: IncidentCommands, severity: str = "p1") -> Incident:
    declared = await cmds.declare(
        Declare(severity, "auth login failing"), user_id="UCMD", channel_id="CGENERAL"
    )
    return declared.incident


@pytest.mark.parametrize("step", ["set_topic", "invite", "post_alert"])
async def test_a_failed_step_archives_the_war_room_and_records_nothing(
    world: World, step: str
) -> None:
    world.chat.fail.add(step)

    with pytest.raises(ChatOpsError) as err:
        await _declare(world.commands())

    assert "No incident was declared and nothing was recorded" in err.value.user_message
    assert "archived `#inc-20261122-auth-login-failing`" in err.value.user_message
    assert ("archive_channel", "CWAR") in world.chat.calls
    assert await world.incidents.open_incidents() == []


async def test_a_failed_channel_creation_records_nothing_and_archives_nothing(
    world: World,
) -> None:
    world.chat.fail.add("create_channel")

    with pytest.raises(ChatOpsError, match="nothing was recorded"):
        await _declare(world.commands())

    assert world.chat.names() == ["create_channel"]
    assert await world.incidents.open_incidents() == []


@pytest.mark.parametrize("step", ["pin", "announce"])
async def test_a_failed_pin_or_announcement_is_a_warning_not_a_lost_incident(
    world: World, step: str
) -> None:
    world.chat.fail.add(step)

    declared = await world.commands().declare(
        Declare("p1", "auth login failing"), user_id="UCMD", channel_id="CGENERAL"
    )

    assert len(declared.warnings) == 1
    assert f"I could not {step}" in declared.warnings[0].user_message
    assert [i.id for i in await world.incidents.open_incidents()] == [declared.incident.id]


async def test_the_requester_comes_first_and_group_members_are_invited_once(
    world: World, config: Config
) -> None:
    severities = dict(config.incidents.severities)
    severities["p1"] = severities["p1"].model_copy(update={"responders": ["S0LEADS", "ULEAD1"]})
    world.config = config.model_copy(
        update={"incidents": config.incidents.model_copy(update={"severities": severities})}
    )
    world.chat.groups["S0LEADS"] = frozenset({"ULEAD2", "ULEAD1", "UCMD"})

    await _declare(world.commands())

    assert ("invite", ["UCMD", "ULEAD1", "ULEAD2"]) in world.chat.calls


async def test_a_failed_reminder_post_is_retried_by_the_next_sweep(world: World) -> None:
    cmds, reminders = world.commands(), world.reminders()
    await _declare(cmds)
    world.clock.advance(15 * MINUTE)
    world.chat.fail.add("post_reminder")

    first = await reminders.send_due_reminders()
    second = await reminders.send_due_reminders()

    assert (first, second) == (0, 1)
    assert world.chat.names().count("post_reminder") == 2


async def test_a_reminder_claimed_by_a_process_that_died_is_posted_by_the_next(
    world: World,
) -> None:
    incident = await _declare(world.commands())
    world.clock.advance(15 * MINUTE)
    due = incident.next_update_due_at
    assert due is not None
    await world.incidents.claim_reminder(incident.id, due=due, token="dead-process")

    sent = await world.reminders().send_due_reminders()

    assert sent == 1


async def test_a_reminder_whose_answer_was_lost_is_not_posted_again(world: World) -> None:
    cmds, reminders = world.commands(), world.reminders()
    await _declare(cmds)
    world.clock.advance(15 * MINUTE)
    world.chat.fail.add("post_reminder_lost_answer")

    first = await reminders.send_due_reminders()
    second = await reminders.send_due_reminders()

    assert (first, second) == (0, 0)
    assert len(world.chat.reminders) == 1
    assert "reminder_posted" in world.chat.names()


async def test_a_reminder_missed_for_an_hour_is_posted_once_and_the_next_is_an_interval_later(
    world: World,
) -> None:
    cmds, reminders = world.commands(), world.reminders()
    incident = await _declare(cmds)
    world.clock.advance(61 * MINUTE)

    sent = [await reminders.send_due_reminders(), await reminders.send_due_reminders()]

    after = await world.incidents.get(incident.id)
    assert after is not None
    assert sent == [1, 0]
    assert after.next_update_due_at == world.clock.now() + timedelta(minutes=15)
    assert world.chat.reminders[0].since_update_s == 61 * MINUTE


async def test_the_second_unanswered_reminder_escalates_to_the_configured_people(
    world: World, config: Config
) -> None:
    severities = dict(config.incidents.severities)
    severities["p1"] = severities["p1"].model_copy(update={"escalate_to": ["S0LEADS"]})
    world.config = config.model_copy(
        update={"incidents": config.incidents.model_copy(update={"severities": severities})}
    )
    cmds, reminders = world.commands(), world.reminders()
    incident = await _declare(cmds)

    for _ in range(3):
        world.clock.advance(15 * MINUTE)
        await reminders.send_due_reminders()

    assert [r.escalate for r in world.chat.reminders] == [False, True, True]
    assert world.chat.reminders[1].escalate_to == ("S0LEADS",)
    kinds = [e.kind for e in await world.incidents.events(incident.id)]
    assert kinds == [
        EventKind.OPENED,
        EventKind.REMINDER,
        EventKind.ESCALATION,
        EventKind.ESCALATION,
    ]


async def test_resolve_passes_the_whole_timeline_to_the_post_mortem(world: World) -> None:
    cmds, reminders = world.commands(), world.reminders()
    incident = await _declare(cmds)
    world.clock.advance(15 * MINUTE)
    await reminders.send_due_reminders()

    await cmds.resolve(incident.id, resolution="rolled back", user_id="UCMD")

    assert (
        "post_resolved",
        [EventKind.OPENED, EventKind.REMINDER, EventKind.RESOLVED],
    ) in world.chat.calls


async def test_a_failed_update_post_says_the_update_is_recorded_anyway(world: World) -> None:
    cmds = world.commands()
    incident = await _declare(cmds)
    world.chat.fail.add("post_update")

    with pytest.raises(ChatOpsError, match="The update itself is recorded"):
        await cmds.update(
            incident.id, status=IncidentStatus.IDENTIFIED, action="found it", user_id="UCMD"
        )

    after = await world.incidents.get(incident.id)
    assert after is not None
    assert after.status is IncidentStatus.IDENTIFIED
