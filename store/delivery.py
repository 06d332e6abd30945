"""The records delivery figures (`/deploy stats`) are computed from: the deploys of one
environment that ended in a period, when each version they took first succeeded in the source
environment, and the evidence that one went wrong (rollbacks that took it back, watch breaches,
incidents, the watches those incidents fell in).

Reads only. Every statement searches an index (migrations 12 and 14), and only the period's
runs and their promoted versions are read one by one: rollbacks, breaches and incidents are
found from their own time, so a period costs what it holds, not what the history holds.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from store.database import Database
from store.db import Store
from store.deploy.models import DeploymentId, DeploymentState

# The states a deploy ends in once it ran: it succeeded, or it failed and went back (or tried).
_ENDED = ",".join(
    f"'{s.value}'"
    for s in (
        DeploymentState.SUCCEEDED,
        DeploymentState.ROLLED_BACK,
        DeploymentState.ROLLBACK_FAILED,
    )
)

# When a deploy went wrong: a stage failed, a person stopped it with `/rollback`, or a person
# aborted its canary (commands/canary records "aborted at the N% stage").
_WENT_WRONG = (
    "e.status = 'failed' OR (e.stage = 'rollback' AND e.status = 'requested') "
    "OR (e.stage = 'canary' AND e.status LIKE 'aborted%')"
)

_PERIOD = (
    "d.environment = :environment AND d.kind = 'deploy' AND d.state IN ({states}) "
    "AND d.finished_at > :since AND d.finished_at <= :until"
)
_OF_SERVICE = (
    " AND EXISTS (SELECT 1 FROM deployment_targets o WHERE o.deployment_id = d.id "
    "AND o.service = :service AND o.status != 'skipped')"
)

_RUNS = f"""
SELECT d.id, d.state, d.created_at, d.finished_at,
    CASE WHEN d.state != 'succeeded' THEN
        (SELECT min(e.at) FROM deployment_events e WHERE e.deployment_id = d.id AND ({_WENT_WRONG}))
    END
FROM deployments d WHERE {_PERIOD.format(states=_ENDED)}
"""  # noqa: S608 - built from constants; every value is a parameter

# CROSS JOIN keeps SQLite from reading the source's succeeded runs first: it finds the version's
# targets by (service, target_version), then each one's run by its key (not the promotion's
# own: it is in another environment than its source).
_IN_SOURCE = f"""
SELECT t.deployment_id, t.service,
    (SELECT min(sd.finished_at) FROM deployment_targets s
        CROSS JOIN deployments sd ON sd.id = s.deployment_id
        WHERE s.service = t.service AND s.target_version = t.target_version
        AND s.status != 'skipped' AND s.deployment_id != t.deployment_id
        AND sd.environment = :source AND sd.kind = 'deploy'
        AND sd.state = 'succeeded')
FROM deployments d JOIN deployment_targets t ON t.deployment_id = d.id
WHERE {_PERIOD.format(states="'succeeded'")} AND t.status != 'skipped'
"""  # noqa: S608 - built from constants; every value is a parameter

# A rollback that took back a deploy of the period finished after it, so within the period.
_TAKEN_BACK = """
SELECT t.deployment_id, t.service, r.id, r.created_at, r.finished_at
FROM deployments r CROSS JOIN deployment_targets t ON t.reverted_by = r.id
WHERE r.environment = :environment AND r.kind = 'rollback' AND r.state = 'succeeded'
    AND r.finished_at > :since AND r.finished_at <= :until
    AND t.reverted_by IS NOT NULL
"""

# A breach of a deploy of the period came after it ended, so within the period.
_BREACHES = """
SELECT w.deployment_id, w.service, min(a.at)
FROM watch_alerts a CROSS JOIN watches w ON w.id = a.watch_id
WHERE a.kind IN ('breach', 'rolled_back') AND a.at > :since AND a.at <= :until
    AND w.environment = :environment
GROUP BY w.deployment_id, w.service
"""

_INCIDENTS = """
SELECT id, severity, summary, service, opened_at, resolved_at, services FROM incidents
WHERE opened_at > ? AND opened_at <= ?
"""

# A watch that was on at `opened` ended at or after it, and at most `longest` after it.
_WATCHING = """
SELECT deployment_id, service, started_at, ends_at FROM watches
WHERE service = ? AND ends_at >= ? AND ends_at <= ? AND started_at <= ? AND environment = ?
"""

_SERVICES = """
SELECT deployment_id, service FROM deployment_targets
WHERE deployment_id = ? AND status != 'skipped' ORDER BY position
"""


@dataclass(frozen=True, slots=True)
class EndedRun:
    """A deploy that ended in the period: succeeded, or rolled back (or its rollback failed)."""

    id: DeploymentId
    state: DeploymentState
    requested_at: datetime
    finished_at: datetime
    went_wrong_at: datetime | None
    """One that did not succeed: its first failure, or when a person stopped it."""


@dataclass(frozen=True, slots=True)
class Promoted:
    """A service a succeeded deploy of the period changed, and when its version first succeeded
    in the source environment (at any time; None when it never did)."""

    deployment_id: DeploymentId
    service: str
    first_in_source: datetime | None


@dataclass(frozen=True, slots=True)
class TakenBack:
    """A service of a deploy that a rollback took back: the rollback, asked and succeeded."""

    deployment_id: DeploymentId
    service: str
    rollback_id: DeploymentId
    requested_at: datetime
    finished_at: datetime


@dataclass(frozen=True, slots=True)
class Breach:
    """The first breach the watch of one service of a deploy alerted on."""

    deployment_id: DeploymentId
    service: str
    at: datetime


@dataclass(frozen=True, slots=True)
class IncidentSpan:
    """An incident as delivery figures see it: what it names and when it was open."""

    id: str
    severity: str
    summary: str
    service: str | None
    opened_at: datetime
    resolved_at: datetime | None
    services: tuple[str, ...] = ()
    """The services picked in its declare form."""


@dataclass(frozen=True, slots=True)
class WatchSpan:
    """When one service of a deploy was watched."""

    deployment_id: DeploymentId
    service: str
    started_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class DeliveryRecords:
    runs: tuple[EndedRun, ...]
    promoted: tuple[Promoted, ...]
    """Empty when no source environment was asked for."""
    taken_back: tuple[TakenBack, ...]
    breaches: tuple[Breach, ...]
    incidents: tuple[IncidentSpan, ...]
    """The incidents of the asked severities opened in the period."""


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


@dataclass(frozen=True)
class Delivery:
    """Reads the records delivery figures are computed from. Runs on the store thread."""

    store: Store

    async def records(
        self,
        environment: str,
        source: str | None,
        *,
        since: datetime,
        until: datetime,
        service: str | None = None,
        severities: Collection[str] = (),
    ) -> DeliveryRecords:
        """The deploys of `environment` that ended after `since` and at or before `until`
        (those that changed `service`, when given), the versions they promoted with their first
        success in `source` (when given), the rollbacks and breaches of `environment` in the
        period, and the incidents of `severities` (lowercase; none when empty) opened in it.
        The rollbacks and breaches may concern older deploys: the caller keeps its runs'."""
        params = {
            "environment": environment,
            "since": since.isoformat(),
            "until": until.isoformat(),
            "source": source,
            "service": service,
        }
        of_service = _OF_SERVICE if service is not None else ""
        wanted = {s.lower() for s in severities}

        def query(db: Database) -> DeliveryRecords:
            runs = tuple(
                EndedRun(DeploymentId(r[0]), DeploymentState(r[1]), _at(r[2]), _at(r[3]), _dt(r[4]))
                for r in db.execute(_RUNS + of_service, params).fetchall()
            )
            promoted: tuple[Promoted, ...] = ()
            if source is not None:
                only = " AND t.service = :service" if service is not None else ""
                promoted = tuple(
                    Promoted(DeploymentId(r[0]), r[1], _dt(r[2]))
                    for r in db.execute(_IN_SOURCE + only, params).fetchall()
                )
            taken_back = tuple(
                TakenBack(DeploymentId(r[0]), r[1], DeploymentId(r[2]), _at(r[3]), _at(r[4]))
                for r in db.execute(_TAKEN_BACK, params).fetchall()
            )
            breaches = tuple(
                Breach(DeploymentId(r[0]), r[1], _at(r[2]))
                for r in db.execute(_BREACHES, params).fetchall()
            )
            incidents = tuple(
                IncidentSpan(
                    r[0], r[1], r[2], r[3], _at(r[4]), _dt(r[5]), tuple(json.loads(r[6] or "[]"))
                )
                for r in db.execute(_INCIDENTS, [params["since"], params["until"]]).fetchall()
                if r[1].lower() in wanted
            )
            return DeliveryRecords(runs, promoted, taken_back, breaches, incidents)

        return await self.store.call(query)

    async def watching(
        self, environment: str, asked: Iterable[tuple[str, datetime]], *, longest_s: float
    ) -> tuple[WatchSpan, ...]:
        """The watches in `environment` of each (service, moment) `asked` that were on at that
        moment; no watch lasts more than `longest_s`."""
        pairs = list(asked)

        def query(db: Database) -> tuple[WatchSpan, ...]:
            found: dict[tuple[str, str], WatchSpan] = {}
            for service, at in pairs:
                moment = at.isoformat()
                latest = (at + timedelta(seconds=longest_s)).isoformat()
                for r in db.execute(
                    _WATCHING, [service, moment, latest, moment, environment]
                ).fetchall():
                    found[(r[0], r[1])] = WatchSpan(DeploymentId(r[0]), r[1], _at(r[2]), _at(r[3]))
            return tuple(found.values())

        return await self.store.call(query) if pairs else ()

    async def services_of(self, deployment_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """The services each of `deployment_ids` changed, in its order."""
        wanted = list(dict.fromkeys(deployment_ids))

        def query(db: Database) -> dict[str, tuple[str, ...]]:
            found: dict[str, tuple[str, ...]] = {}
            for run_id in wanted:
                rows: list[Any] = db.execute(_SERVICES, [run_id]).fetchall()
                found[run_id] = tuple(r[1] for r in rows)
            return found

        return await self.store.call(query) if wanted else {}
