"""Incident values kept in SQLite: the incident, its status and its timeline events."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import NewType

from store.values import FrozenModel

IncidentId = NewType("IncidentId", str)


class IncidentStatus(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MITIGATING = "mitigating"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


UPDATE_STATUSES = (
    IncidentStatus.INVESTIGATING,
    IncidentStatus.IDENTIFIED,
    IncidentStatus.MITIGATING,
    IncidentStatus.MONITORING,
)


class EventKind(StrEnum):
    OPENED = "opened"
    UPDATE = "update"
    STATUS = "status"
    REMINDER = "reminder"
    ESCALATION = "escalation"
    COMMANDER = "commander"
    RESOLVED = "resolved"
    ROLLBACK = "rollback"


class Incident(FrozenModel):
    id: IncidentId
    severity: str
    summary: str
    service: str | None
    """The one service the templates name ("[Service] experiencing issues"), if any."""
    status: IncidentStatus
    impact: str
    action: str | None
    eta: str
    commander: str
    declared_by: str
    declared_in: str | None
    channel_id: str
    channel_name: str
    alert_ts: str | None
    announce_channel: str | None
    announce_ts: str | None
    opened_at: datetime
    last_update_at: datetime
    next_update_due_at: datetime | None
    unanswered_reminders: int = 0
    resolved_at: datetime | None = None
    resolution: str | None = None
    follow_up: str | None = None
    services: tuple[str, ...] = ()
    """The services picked in the declare form (configured names); none when declared by text."""

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    @property
    def subject(self) -> str:
        """What the templates call "[Service]": the named service, else the summary."""
        return self.service or self.summary


class IncidentEvent(FrozenModel):
    at: datetime
    kind: EventKind
    actor: str | None = None
    detail: str | None = None
