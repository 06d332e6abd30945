"""What `/incident` answers besides sentences: a declared incident, the open ones, and the
forms its buttons open."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pipeline.kernel.errors import ChatOpsError
from pipeline.kernel.ports import NotInvited
from store.incident.models import Incident


@dataclass(frozen=True)
class Declared:
    """Reply: the incident is open; `warnings` say what did not work (pin, announcement)."""

    incident: Incident
    warnings: tuple[ChatOpsError, ...]
    not_invited: tuple[NotInvited, ...]


@dataclass(frozen=True)
class OpenIncidents:
    """Reply: every open incident, as of `now`."""

    incidents: tuple[Incident, ...]
    now: datetime


@dataclass(frozen=True)
class UpdateFormView:
    """Form: post an update on `incident`."""

    incident: Incident


@dataclass(frozen=True)
class ResolveFormView:
    """Form: resolve `incident`."""

    incident: Incident


@dataclass(frozen=True)
class SeverityChoice:
    """A severity the declare form offers: its key (`p1`) and what it means."""

    key: str
    description: str


@dataclass(frozen=True)
class DeclareFormView:
    """Form: declare an incident, with what is known already filled in.

    `severities` and `services` are the choices (as configured); `severity`, `summary` and
    `chosen` the prefilled answers; `environment` the one whose deploys a P1/P2 freezes (none
    configured: nothing is frozen); `channel_id` where the reply goes."""

    severities: tuple[SeverityChoice, ...]
    services: tuple[str, ...]
    environment: str | None
    channel_id: str | None
    severity: str | None = None
    summary: str = ""
    chosen: tuple[str, ...] = ()
    source: str = ""
    """What the form was opened from (an alert's deployment id), carried through Slack."""
