"""The rows delivery figures (`/deploy stats`) are computed from: each service a deploy changed
in one environment, for the deploys that ended in a period, with what became of it (its
failure, the rollback that took it back, its watch and first breach, and when its version first
succeeded in the source environment), and the P1/P2 incidents opened while they were watched.

Reads only, in two statements that search indexes (migrations 12 and 14): the period's runs
through `(environment, finished_at)`, everything else by key. Raw IDs only.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from store.db import Store
from store.deploy.models import DeploymentId, DeploymentState

# The states a deploy ends in once it ran: it succeeded, or it failed and went back (or tried).
_ENDED = (
    DeploymentState.SUCCEEDED,
    DeploymentState.ROLLED_BACK,
    DeploymentState.ROLLBACK_FAILED,
)

# When a deploy went wrong: a stage failed, a person stopped it with `/rollback`, or a person
# aborted its canary (commands/canary records "aborted at the N% stage").
_WENT_WRONG = (
    "e.status = 'failed' OR (e.stage = 'rollback' AND e.status = 'requested') "
    "OR (e.stage = 'canary' AND e.status LIKE 'aborted%')"
)

# CROSS JOIN keeps SQLite from reading the source's succeeded runs first: it finds the version's
# targets by (service, target_version), then each one's run by its key.
_CHANGES = f"""
SELECT d.id, d.state, d.created_at, d.finished_at,
    CASE WHEN d.state != 'succeeded' THEN
        (SELECT min(e.at) FROM deployment_events e WHERE e.deployment_id = d.id AND ({_WENT_WRONG}))
    END,
    t.service, t.target_version, t.reverted_by, r.created_at, r.finished_at,
    w.started_at, w.ends_at,
    (SELECT min(a.at) FROM watch_alerts a
        WHERE a.watch_id = w.id AND a.kind IN ('breach', 'rolled_back')),
    CASE WHEN d.state = 'succeeded' AND :source IS NOT NULL THEN
        (SELECT min(sd.finished_at) FROM deployment_targets s
            CROSS JOIN deployments sd ON sd.id = s.deployment_id
            WHERE s.service = t.service AND s.target_version = t.target_version
            AND s.status != 'skipped' AND sd.environment = :source AND sd.kind = 'deploy'
            AND sd.state = 'succeeded')
    END
FROM deployments d
JOIN deployment_targets t ON t.deployment_id = d.id
LEFT JOIN deployments r ON r.id = t.reverted_by
LEFT JOIN watches w ON w.deployment_id = d.id AND w.service = t.service
WHERE d.environment = :environment AND d.finished_at > :since AND d.finished_at <= :until
    AND d.kind = 'deploy' AND d.state IN ({",".join(f"'{s.value}'" for s in _ENDED)})
    AND t.status != 'skipped'
"""  # noqa: S608 - built from constants; every value is a parameter

_INCIDENTS = """
SELECT id, severity, summary, service, opened_at, resolved_at FROM incidents
WHERE opened_at >= ? AND opened_at <= ?
"""


@dataclass(frozen=True)
class Change:
    """One service one deploy changed, and what became of it."""

    deployment_id: DeploymentId
    state: DeploymentState
    """How the deploy ended: succeeded, rolled back, or its rollback failed."""
    requested_at: datetime
    finished_at: datetime
    went_wrong_at: datetime | None
    """A deploy that did not succeed: its first failure, or when a person stopped it."""
    service: str
    version: str
    rolled_back_by: DeploymentId | None
    """The rollback that took this service back since (it succeeded)."""
    rollback_requested_at: datetime | None
    rollback_finished_at: datetime | None
    watched_from: datetime | None
    watched_until: datetime | None
    """Its watch's period, when the environment watches."""
    breached_at: datetime | None
    """The first breach its watch alerted on (and rolled back on, with `rollback = true`)."""
    first_in_source: datetime | None
    """A succeeded deploy: when this version of the service first succeeded in the source
    environment (asked for), at any time; None when it never did."""


@dataclass(frozen=True)
class IncidentSpan:
    """An incident as delivery figures see it: what it names and when it was open."""

    id: str
    severity: str
    summary: str
    service: str | None
    opened_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True)
class DeliveryRecords:
    changes: tuple[Change, ...]
    incidents: tuple[IncidentSpan, ...]
    """The incidents of the asked severities opened while any of `changes` was watched."""


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _change(row: tuple[Any, ...]) -> Change:
    return Change(
        deployment_id=DeploymentId(row[0]),
        state=DeploymentState(row[1]),
        requested_at=datetime.fromisoformat(row[2]),
        finished_at=datetime.fromisoformat(row[3]),
        went_wrong_at=_dt(row[4]),
        service=row[5],
        version=row[6],
        rolled_back_by=DeploymentId(row[7]) if row[7] else None,
        rollback_requested_at=_dt(row[8]),
        rollback_finished_at=_dt(row[9]),
        watched_from=_dt(row[10]),
        watched_until=_dt(row[11]),
        breached_at=_dt(row[12]),
        first_in_source=_dt(row[13]),
    )


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
        severities: Collection[str] = (),
    ) -> DeliveryRecords:
        """The services changed by the deploys of `environment` that ended after `since` and
        at or before `until`, each with what became of it (`first_in_source` looked up in
        `source`, when given), and the incidents of `severities` (lowercase; none when empty)
        opened while any of them was watched."""
        wanted = {s.lower() for s in severities}

        def query(db: sqlite_utils.Database) -> DeliveryRecords:
            rows = db.execute(
                _CHANGES,
                {
                    "environment": environment,
                    "since": since.isoformat(),
                    "until": until.isoformat(),
                    "source": source,
                },
            ).fetchall()
            changes = tuple(_change(r) for r in rows)
            starts = [c.watched_from for c in changes if c.watched_from is not None]
            ends = [c.watched_until for c in changes if c.watched_until is not None]
            if not wanted or not starts or not ends:
                return DeliveryRecords(changes, ())
            found = db.execute(
                _INCIDENTS, [min(starts).isoformat(), max(ends).isoformat()]
            ).fetchall()
            incidents = tuple(
                IncidentSpan(
                    id=r[0],
                    severity=r[1],
                    summary=r[2],
                    service=r[3],
                    opened_at=datetime.fromisoformat(r[4]),
                    resolved_at=_dt(r[5]),
                )
                for r in found
                if r[1].lower() in wanted
            )
            return DeliveryRecords(changes, incidents)

        return await self.store.call(query)
