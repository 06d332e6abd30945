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
