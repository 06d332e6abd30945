"""Deploys that know about incidents: an open P1 or P2 naming services freezes deploys of those
services to the incidents' environment (`[incidents] environment`) until it is resolved.

Reads the store only; the war room is told through the `WarRooms` port. `/rollback` never
comes here: a rollback is how an incident often ends.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.kernel.config import Config
from pipeline.kernel.ports import WarRooms
from pipeline.kernel.text import Person, line
from store.incident.models import Incident
from store.incident.repository import Incidents

FREEZING_SEVERITIES = frozenset({"p1", "p2"})


@dataclass(frozen=True)
class IncidentFreeze:
    """An open incident and the services of a plan it freezes."""

    incident: Incident
    services: tuple[str, ...]


def named_services(incident: Incident, config: Config) -> set[str]:
    """The services an incident names: those picked in its declare form, the one it was
    declared for, and any other configured service its summary names as a word."""
    return services_named(incident.service, incident.summary, config) | set(incident.services)


def services_named(service: str | None, summary: str, config: Config) -> set[str]:
    """`service` (an incident's own) and every configured service `summary` names as a word."""
    named = {service} if service else set()
    for name in config.services:
        if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", summary):
            named.add(name)
    return named


class Freezes:
    """The incident freezes standing in the way of a deploy."""

    def __init__(self, *, config: Config, incidents: Incidents, rooms: WarRooms) -> None:
        self._config = config
        self._incidents = incidents
        self._rooms = rooms

    async def of(self, environment: str, services: Sequence[str]) -> list[IncidentFreeze]:
        """Each open P1/P2 that freezes some of `services` in `environment`, oldest first."""
        if environment != self._config.incidents.environment:
            return []
        found = []
        for incident in await self._incidents.open_incidents():
            if incident.severity.lower() not in FREEZING_SEVERITIES:
                continue
            hit = tuple(s for s in services if s in named_services(incident, self._config))
            if hit:
                found.append(IncidentFreeze(incident, hit))
        return found

    async def tell(
        self,
        freeze: IncidentFreeze,
        *,
        user_id: str,
        environment: str,
        break_glass: str | None,
    ) -> None:
        """Tell the war room a deploy of its services was refused, or break-glassed."""
        services = ", ".join(f"`{s}`" for s in freeze.services)
        sev = freeze.incident.severity.upper()
        if break_glass:
            message = line(
                "🔓 {who} asked to deploy {services} to {env} during this {sev} with "
                "`--break-glass`: {reason}. It needs one approval more than usual.",
                who=Person(user_id),
                services=services,
                env=environment,
                sev=sev,
                reason=break_glass,
            )
        else:
            message = line(
                "🧊 {who} asked to deploy {services} to {env} during this {sev}: refused. Deploys "
                "of these services wait until the incident is resolved (or go with "
                "`--break-glass <reason>`); `/rollback` stays allowed.",
                who=Person(user_id),
                services=services,
                env=environment,
                sev=sev,
            )
        await self._rooms.tell_room(freeze.incident, message)
