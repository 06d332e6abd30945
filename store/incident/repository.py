"""Incident records: the incident, its roles (commander, reporter) and its timeline.

Every change is a compare-and-set on an open incident, so a double click, a racing reminder or a
second resolve changes nothing. The reminder schedule is data: `next_update_due_at`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import Enum, StrEnum
from typing import Any

from store.database import Database
from store.db import Repository
from store.incident.models import (
    EventKind,
    Incident,
    IncidentEvent,
    IncidentStatus,
)
from store.sql import all_rows


def _ts(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


_COLUMNS = (
    "id, severity, summary, service, status, impact, action, eta, declared_by, declared_in, "
    "channel_id, channel_name, alert_ts, announce_channel, announce_ts, opened_at, "
    "last_update_at, next_update_due_at, unanswered_reminders, resolved_at, resolution, "
    "follow_up, services"
)


# The claim of a reminder whose post failed: whether Slack has it is not known.
UNCONFIRMED = "unconfirmed"


class Claim(Enum):
    """What claiming a due reminder found; see `Incidents.claim_reminder`."""

    TAKEN = "taken"
    TAKEN_OVER = "taken_over"
    BUSY = "busy"


class Incidents(Repository):
    """Repository of incidents. Every method runs on the store thread."""

    async def create(self, incident: Incident) -> None:
        """Record a declared incident, its commander and reporter, and the `opened` event."""

        def insert(db: Database) -> None:
            with db.atomic():
                row = incident.model_dump(exclude={"commander"})
                db.table("incidents").insert({k: _value(v) for k, v in row.items()})
                at = _ts(incident.opened_at)
                db.table("incident_roles").insert_all(
                    [
                        _role(incident.id, "commander", incident.commander, at),
                        _role(incident.id, "reporter", incident.declared_by, at),
                    ]
                )
                _event(
                    db,
                    incident.id,
                    IncidentEvent(
                        at=incident.opened_at,
                        kind=EventKind.OPENED,
                        actor=incident.declared_by,
                        detail=f"{incident.severity.upper()}: {incident.summary}",
                    ),
                )

        await self._store.call(insert)

    async def set_alert(self, incident_id: str, ts: str) -> None:
        """Remember the war room's alert, once Slack has posted it."""

        def set_ts(db: Database) -> None:
            db.execute("UPDATE incidents SET alert_ts = ? WHERE id = ?", [ts, incident_id])

        await self._store.call(set_ts)

    async def discard(self, incident_id: str) -> None:
        """Forget an incident whose declaration failed before its alert was up: it, its roles
        and its events, as if it had never been recorded."""

        def delete(db: Database) -> None:
            with db.atomic():
                for table in ("incident_events", "incident_roles"):
                    db.execute(f"DELETE FROM {table} WHERE incident_id = ?", [incident_id])  # noqa: S608 - fixed names
                db.execute("DELETE FROM incidents WHERE id = ?", [incident_id])

        await self._store.call(delete)

    async def set_announcement(self, incident_id: str, ts: str) -> None:
        """Remember the announcement whose thread carries the incident's updates."""

        def set_ts(db: Database) -> None:
            db.execute("UPDATE incidents SET announce_ts = ? WHERE id = ?", [ts, incident_id])

        await self._store.call(set_ts)

    async def get(self, incident_id: str) -> Incident | None:
        return await self._store.call(lambda db: _load(db, "id = ?", [incident_id]))

    async def by_channel(self, channel_id: str) -> Incident | None:
        """The incident whose war room is `channel_id`, open or resolved."""
        return await self._store.call(lambda db: _load(db, "channel_id = ?", [channel_id]))

    async def open_incidents(self) -> list[Incident]:
        """Every unresolved incident, oldest first."""

        def query(db: Database) -> list[Incident]:
            ids = db.execute(
                "SELECT id FROM incidents WHERE resolved_at IS NULL ORDER BY opened_at, id"
            ).fetchall()
            return [i for (x,) in ids if (i := _load(db, "id = ?", [x])) is not None]

        return await self._store.call(query)

    async def record_update(
        self,
        incident_id: str,
        *,
        status: IncidentStatus,
        action: str,
        eta: str,
        impact: str,
        at: datetime,
        next_update_due_at: datetime | None,
        actor: str,
    ) -> Incident | None:
        """Apply an update to an open incident and reset its reminders. None when resolved."""

        def update(db: Database) -> Incident | None:
            with db.atomic():
                before = _load(db, "id = ? AND resolved_at IS NULL", [incident_id])
                if before is None:
                    return None
                db.execute(
                    "UPDATE incidents SET status = ?, action = ?, eta = ?, impact = ?, "
                    "last_update_at = ?, next_update_due_at = ?, unanswered_reminders = 0, "
                    "reminder_claim = NULL WHERE id = ? AND resolved_at IS NULL",
                    [
                        status.value,
                        action,
                        eta,
                        impact,
                        _ts(at),
                        _ts(next_update_due_at),
                        incident_id,
                    ],
                )
                if before.status is not status:
                    _event(
                        db,
                        incident_id,
                        IncidentEvent(
                            at=at,
                            kind=EventKind.STATUS,
                            actor=actor,
                            detail=f"{before.status.value} → {status.value}",
                        ),
                    )
                detail = f"{status.value}: {action} (ETA {eta})"
                _event(
                    db,
                    incident_id,
                    IncidentEvent(at=at, kind=EventKind.UPDATE, actor=actor, detail=detail),
                )
                return _load(db, "id = ?", [incident_id])

        return await self._store.call(update)

    async def resolve(
        self,
        incident_id: str,
        *,
        at: datetime,
        resolution: str,
        impact: str,
        follow_up: str,
        actor: str,
    ) -> Incident | None:
        """Resolve an open incident and stop its reminders. None when it was already resolved."""

        def resolve(db: Database) -> Incident | None:
            with db.atomic():
                changed = db.execute(
                    "UPDATE incidents SET status = ?, resolved_at = ?, resolution = ?, impact = ?, "
                    "follow_up = ?, next_update_due_at = NULL, reminder_claim = NULL "
                    "WHERE id = ? AND resolved_at IS NULL",
                    [
                        IncidentStatus.RESOLVED.value,
                        _ts(at),
                        resolution,
                        impact,
                        follow_up,
                        incident_id,
                    ],
                ).rowcount
                if changed != 1:
                    return None
                event = IncidentEvent(
                    at=at, kind=EventKind.RESOLVED, actor=actor, detail=resolution
                )
                _event(db, incident_id, event)
                return _load(db, "id = ?", [incident_id])

        return await self._store.call(resolve)

    async def set_commander(
        self, incident_id: str, *, user_id: str, at: datetime, actor: str
    ) -> Incident | None:
        """Hand command of an open incident to `user_id`. None when it was resolved."""

        def assign(db: Database) -> Incident | None:
            with db.atomic():
                before = _load(db, "id = ? AND resolved_at IS NULL", [incident_id])
                if before is None:
                    return None
                db.execute(
                    "UPDATE incident_roles SET user_id = ?, assigned_at = ? "
                    "WHERE incident_id = ? AND role = 'commander'",
                    [user_id, _ts(at), incident_id],
                )
                # The new commander's raw ID; the previous one is the commander before it.
                event = IncidentEvent(at=at, kind=EventKind.COMMANDER, actor=actor, detail=user_id)
                _event(db, incident_id, event)
                return _load(db, "id = ?", [incident_id])

        return await self._store.call(assign)

    async def claim_reminder(self, incident_id: str, *, due: datetime, token: str) -> Claim:
        """Take the reminder due at `due` before posting it.

        TAKEN: this caller (`token`) now owns it. TAKEN_OVER: it owns it, but a previous process
        had claimed it and may have posted it before dying. BUSY: not due at `due`, resolved, or
        already being posted by this process.
        """

        def claim(db: Database) -> Claim:
            with db.atomic():
                row = db.execute(
                    "SELECT reminder_claim FROM incidents WHERE id = ? AND resolved_at IS NULL "
                    "AND next_update_due_at = ?",
                    [incident_id, _ts(due)],
                ).fetchone()
                if row is None or row[0] == token:
                    return Claim.BUSY
                db.execute(
                    "UPDATE incidents SET reminder_claim = ? WHERE id = ?", [token, incident_id]
                )
                return Claim.TAKEN if row[0] is None else Claim.TAKEN_OVER

        return await self._store.call(claim)

    async def release_reminder(self, incident_id: str, *, token: str) -> None:
        """Give up a claim whose post failed, so a later attempt tries again.

        The claim is left as `unconfirmed`, not cleared: a post that timed out may have reached
        Slack, so the next claim is TAKEN_OVER and looks in the channel before posting.
        """
        await self._store.call(
            lambda db: db.execute(
                "UPDATE incidents SET reminder_claim = ? WHERE id = ? AND reminder_claim = ?",
                [UNCONFIRMED, incident_id, token],
            )
        )

    async def finish_reminder(
        self,
        incident_id: str,
        *,
        due: datetime,
        token: str,
        next_due: datetime,
        event: IncidentEvent,
    ) -> Incident | None:
        """After posting: move the schedule on (unless an update already did) and log it.

        Returns the incident as it is now (None if it vanished)."""

        def finish(db: Database) -> Incident | None:
            with db.atomic():
                db.execute(
                    "UPDATE incidents SET next_update_due_at = ?, "
                    "unanswered_reminders = unanswered_reminders + 1 "
                    "WHERE id = ? AND resolved_at IS NULL AND next_update_due_at = ?",
                    [_ts(next_due), incident_id, _ts(due)],
                )
                db.execute(
                    "UPDATE incidents SET reminder_claim = NULL "
                    "WHERE id = ? AND reminder_claim = ?",
                    [incident_id, token],
                )
                _event(db, incident_id, event)
                return _load(db, "id = ?", [incident_id])

        return await self._store.call(finish)

    async def record_event(self, incident_id: str, event: IncidentEvent) -> None:
        """Add an event to the timeline (something done for the incident from elsewhere)."""
        await self._store.call(lambda db: _event(db, incident_id, event))

    async def events(self, incident_id: str) -> list[IncidentEvent]:
        """The timeline, oldest first."""

        sql = (
            "SELECT at, kind, actor, detail FROM incident_events WHERE incident_id = ? ORDER BY id"
        )
        return await self._store.call(all_rows(sql, [incident_id], _event_of))


def _value(v: Any) -> Any:
    if isinstance(v, tuple):
        return json.dumps(list(v))
    if isinstance(v, datetime):
        return _ts(v)
    if isinstance(v, StrEnum):
        return v.value
    return v


def _role(incident_id: str, role: str, user_id: str, at: str | None) -> dict[str, Any]:
    return {"incident_id": incident_id, "role": role, "user_id": user_id, "assigned_at": at}


def _event(db: Database, incident_id: str, event: IncidentEvent) -> None:
    db.table("incident_events").insert(
        {
            "incident_id": incident_id,
            "at": _ts(event.at),
            "kind": event.kind.value,
            "actor": event.actor,
            "detail": event.detail,
        }
    )


def _load(db: Database, where: str, args: Sequence[Any]) -> Incident | None:
    row = db.execute(
        f"SELECT {_COLUMNS}, (SELECT user_id FROM incident_roles r WHERE r.incident_id = i.id "  # noqa: S608
        f"AND r.role = 'commander') FROM incidents i WHERE {where}",
        list(args),
    ).fetchone()
    if row is None:
        return None
    names = [c.strip() for c in _COLUMNS.split(",")] + ["commander"]
    data = dict(zip(names, row, strict=True))
    for key in ("opened_at", "last_update_at", "next_update_due_at", "resolved_at"):
        data[key] = _dt(data[key])
    data["services"] = tuple(json.loads(data["services"] or "[]"))
    return Incident.model_validate(data)


def _event_of(r: tuple[Any, ...]) -> IncidentEvent:
    return IncidentEvent(
        at=datetime.fromisoformat(r[0]), kind=EventKind(r[1]), actor=r[2], detail=r[3]
    )
