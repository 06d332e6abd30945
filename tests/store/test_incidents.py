"""The incidents repository on a real SQLite file: CAS updates, resolution, reminder claims."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from store.db import Store
from store.incident.models import EventKind, Incident, IncidentEvent, IncidentId, IncidentStatus
from store.incident.repository import Claim, Incidents
from store.migrations import MIGRATIONS

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def make_incident(incident_id: str = "inc-1", *, channel_id: str = "CWAR1") -> Incident:
    return Incident(
        id=IncidentId(incident_id),
        severity="p1",
        summary="auth login failing",
        service=None,
        status=IncidentStatus.INVESTIGATING,
        impact="auth login failing",
        action=None,
        eta="Unknown",
        commander="UCMD",
        declared_by="UCMD",
        declared_in="CGENERAL",
        channel_id=channel_id,
        channel_name="inc-20261122-auth-login-failing",
        alert_ts="1.1",
        announce_channel="CINCIDENTS",
        announce_ts="1.2",
        opened_at=T0,
        last_update_at=T0,
        next_update_due_at=T0 + 15 * MIN,
    )


@pytest.fixture
async def incidents(database: Path | str) -> AsyncIterator[Incidents]:
    store = await Store.open(database)
    repo = Incidents(store)
    await repo.create(make_incident())
    yield repo
    await store.close()


async def _update(repo: Incidents, *, at: datetime, status: IncidentStatus) -> Incident | None:
    return await repo.record_update(
        "inc-1",
        status=status,
        action="rolling back auth-svc",
        eta="10 minutes",
        impact="logins fail",
        at=at,
        next_update_due_at=at + 15 * MIN,
        actor="UCMD",
    )


def test_the_incident_migration_is_appended_as_version_2() -> None:
    assert [(v, name) for v, name, _ in MIGRATIONS][:2] == [
        (1, "deployments, approvals, events, audit log"),
        (2, "incidents, their roles and timeline"),
    ]


async def test_a_created_incident_reads_back_by_id_and_by_war_room(incidents: Incidents) -> None:
    by_id = await incidents.get("inc-1")
    by_channel = await incidents.by_channel("CWAR1")

    assert by_id == make_incident()
    assert by_channel == by_id
    assert await incidents.by_channel("CELSEWHERE") is None


async def test_declaring_records_the_opened_event_and_the_commander_role(
    incidents: Incidents,
) -> None:
    events = await incidents.events("inc-1")

    assert events == [
        IncidentEvent(at=T0, kind=EventKind.OPENED, actor="UCMD", detail="P1: auth login failing")
    ]
    assert (await incidents.get("inc-1")).commander == "UCMD"  # type: ignore[union-attr]


async def test_an_update_resets_the_timer_and_logs_the_status_change(incidents: Incidents) -> None:
    updated = await _update(incidents, at=T0 + 10 * MIN, status=IncidentStatus.IDENTIFIED)

    assert updated is not None
    assert updated.next_update_due_at == T0 + 25 * MIN
    assert updated.last_update_at == T0 + 10 * MIN
    assert (updated.action, updated.eta, updated.impact) == (
        "rolling back auth-svc",
        "10 minutes",
        "logins fail",
    )
    kinds = [e.kind for e in await incidents.events("inc-1")]
    assert kinds == [EventKind.OPENED, EventKind.STATUS, EventKind.UPDATE]


async def test_an_update_with_the_same_status_logs_no_status_change(incidents: Incidents) -> None:
    await _update(incidents, at=T0 + MIN, status=IncidentStatus.INVESTIGATING)

    kinds = [e.kind for e in await incidents.events("inc-1")]
    assert kinds == [EventKind.OPENED, EventKind.UPDATE]


async def test_resolving_twice_changes_the_incident_once(incidents: Incidents) -> None:
    first = await incidents.resolve(
        "inc-1", at=T0 + 47 * MIN, resolution="rolled back", impact="x", follow_up="y", actor="U1"
    )
    second = await incidents.resolve(
        "inc-1", at=T0 + 50 * MIN, resolution="again", impact="x", follow_up="y", actor="U2"
    )

    assert first is not None
    assert first.resolved_at == T0 + 47 * MIN
    assert first.next_update_due_at is None
    assert second is None
    assert await incidents.open_incidents() == []


async def test_a_resolved_incident_takes_no_update_or_commander(incidents: Incidents) -> None:
    await incidents.resolve(
        "inc-1", at=T0 + MIN, resolution="fixed", impact="x", follow_up="y", actor="U1"
    )

    assert await _update(incidents, at=T0 + 2 * MIN, status=IncidentStatus.MONITORING) is None
    assert await incidents.set_commander("inc-1", user_id="U2", at=T0, actor="U1") is None


async def test_handing_over_changes_the_commander_and_logs_the_new_one_as_a_raw_id(
    incidents: Incidents,
) -> None:
    after = await incidents.set_commander("inc-1", user_id="UNEW", at=T0 + MIN, actor="UCMD")

    assert after is not None
    assert after.commander == "UNEW"
    event = (await incidents.events("inc-1"))[-1]
    assert (event.actor, event.detail) == ("UCMD", "UNEW")


class TestReminderClaims:
    async def test_a_claim_is_taken_once_per_process(self, incidents: Incidents) -> None:
        due = T0 + 15 * MIN

        first = await incidents.claim_reminder("inc-1", due=due, token="proc-a")
        again = await incidents.claim_reminder("inc-1", due=due, token="proc-a")

        assert (first, again) == (Claim.TAKEN, Claim.BUSY)

    async def test_a_claim_left_by_a_dead_process_is_taken_over(self, incidents: Incidents) -> None:
        due = T0 + 15 * MIN
        await incidents.claim_reminder("inc-1", due=due, token="dead-process")

        taken = await incidents.claim_reminder("inc-1", due=due, token="new-process")

        assert taken is Claim.TAKEN_OVER

    async def test_a_claim_for_a_due_time_that_moved_on_fails(self, incidents: Incidents) -> None:
        await _update(incidents, at=T0 + 10 * MIN, status=IncidentStatus.IDENTIFIED)

        assert await incidents.claim_reminder("inc-1", due=T0 + 15 * MIN, token="p") is Claim.BUSY

    async def test_a_released_claim_is_taken_over_so_the_channel_is_checked_first(
        self, incidents: Incidents
    ) -> None:
        """A failed post may still have reached Slack: the next try must look before posting."""
        due = T0 + 15 * MIN
        await incidents.claim_reminder("inc-1", due=due, token="p")

        await incidents.release_reminder("inc-1", token="p")

        assert await incidents.claim_reminder("inc-1", due=due, token="p") is Claim.TAKEN_OVER

    async def test_finishing_moves_the_schedule_and_counts_the_unanswered_reminder(
        self, incidents: Incidents
    ) -> None:
        due = T0 + 15 * MIN
        await incidents.claim_reminder("inc-1", due=due, token="p")
        event = IncidentEvent(at=due, kind=EventKind.REMINDER, detail="no update for 15 min")

        await incidents.finish_reminder(
            "inc-1", due=due, token="p", next_due=due + 15 * MIN, event=event
        )

        after = await incidents.get("inc-1")
        assert after is not None
        assert (after.next_update_due_at, after.unanswered_reminders) == (T0 + 30 * MIN, 1)
        assert (await incidents.events("inc-1"))[-1] == event
        assert await incidents.claim_reminder("inc-1", due=T0 + 30 * MIN, token="p") is Claim.TAKEN

    async def test_an_update_landing_mid_post_keeps_its_own_schedule(
        self, incidents: Incidents
    ) -> None:
        due = T0 + 15 * MIN
        await incidents.claim_reminder("inc-1", due=due, token="p")
        await _update(incidents, at=T0 + 14 * MIN, status=IncidentStatus.IDENTIFIED)
        event = IncidentEvent(at=due, kind=EventKind.REMINDER)

        await incidents.finish_reminder(
            "inc-1", due=due, token="p", next_due=due + 15 * MIN, event=event
        )

        after = await incidents.get("inc-1")
        assert after is not None
        assert (after.next_update_due_at, after.unanswered_reminders) == (T0 + 29 * MIN, 0)
