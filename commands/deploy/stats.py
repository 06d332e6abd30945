"""`/deploy stats`: delivery figures of one environment over a period, computed from the store's
records (docs/commands.md, "/deploy stats", defines each figure).

Pure functions over `store.delivery.DeliveryRecords`, and the use case that reads them: nothing
here touches AWS or Slack.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from commands.deploy.parse import StatsRequest
from commands.deploy.replies import DeliveryStats, Failure, FailureSign
from pipeline.freezes import FREEZING_SEVERITIES, services_named
from pipeline.kernel.config import Config
from pipeline.kernel.ports import Clock
from store.delivery import Change, Delivery, DeliveryRecords, IncidentSpan
from store.deploy.models import DeploymentState

_FAILED = (DeploymentState.ROLLED_BACK, DeploymentState.ROLLBACK_FAILED)


def median(values: Sequence[float]) -> float | None:
    """The middle value (the mean of the two middle ones for an even count); None for none."""
    return statistics.median(values) if values else None


def percentile_90(values: Sequence[float]) -> float | None:
    """The 90th percentile by nearest rank: the smallest value at least 90% of them are at or
    under; None for none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


@dataclass(frozen=True)
class DeliveryFigures:
    """Answers `/deploy stats`: reads the period's records and computes the figures."""

    config: Config
    delivery: Delivery
    clock: Clock

    async def figures(self, request: StatsRequest) -> DeliveryStats:
        """The figures of `request`'s environment over its period, up to now. Reads the store."""
        until = self.clock.now()
        env = self.config.environment(request.environment)
        watched_incidents = env.name == self.config.incidents.environment
        records = await self.delivery.records(
            env.name,
            env.promote_from,
            since=until - timedelta(days=request.days),
            until=until,
            severities=FREEZING_SEVERITIES if watched_incidents else (),
        )
        return compute(records, request, config=self.config, until=until)


def compute(
    records: DeliveryRecords, request: StatsRequest, *, config: Config, until: datetime
) -> DeliveryStats:
    """The figures of the deploys in `records` (only `request.service`'s changes, when one is
    asked for)."""
    source = config.environment(request.environment).promote_from
    runs: dict[str, list[Change]] = {}
    for change in records.changes:
        if request.service is None or change.service == request.service:
            runs.setdefault(change.deployment_id, []).append(change)
    succeeded = [c for c in runs.values() if c[0].state is DeploymentState.SUCCEEDED]
    lead_s = [(c[0].finished_at - c[0].requested_at).total_seconds() for c in succeeded]
    in_source_s: list[float] = []
    never_in_source = 0
    for changes in succeeded if source is not None else []:
        for c in changes:
            if c.first_in_source is None or c.first_in_source > c.requested_at:
                never_in_source += 1
            else:
                in_source_s.append((c.requested_at - c.first_in_source).total_seconds())
    incidents = [(i, services_named(i.service, i.summary, config)) for i in records.incidents]
    failures = sorted(
        (f for changes in runs.values() if (f := _failure(changes, incidents)) is not None),
        key=lambda f: (f.finished_at, f.deployment_id),
    )
    restore_s = [
        (f.restored_at - f.began_at).total_seconds() for f in failures if f.restored_at is not None
    ]
    return DeliveryStats(
        environment=request.environment,
        days=request.days,
        service=request.service,
        since=until - timedelta(days=request.days),
        until=until,
        deploys=len(succeeded),
        lead_median_s=median(lead_s),
        lead_p90_s=percentile_90(lead_s),
        source=source,
        in_source_median_s=median(in_source_s),
        in_source_versions=len(in_source_s),
        never_in_source=never_in_source,
        ended=len(runs),
        failures=tuple(failures),
        restore_median_s=median(restore_s),
    )


def _failure(
    changes: list[Change], incidents: Iterable[tuple[IncidentSpan, set[str]]]
) -> Failure | None:
    """Why one deploy (its `changes`) counts as a change failure, when it does: when it went
    wrong and when service was restored."""
    run = changes[0]
    signs: list[FailureSign] = []
    began: list[datetime] = []
    restored: list[datetime] = []
    if run.state in _FAILED:
        signs.append(FailureSign.FAILED)
        began.append(run.went_wrong_at or run.finished_at)
        if run.state is DeploymentState.ROLLED_BACK:
            restored.append(run.finished_at)
    taken_back = [c for c in changes if c.rolled_back_by is not None]
    if taken_back:
        signs.append(FailureSign.ROLLED_BACK)
        began += [c.rollback_requested_at for c in taken_back if c.rollback_requested_at]
        restored += [c.rollback_finished_at for c in taken_back if c.rollback_finished_at]
    breaches = [c.breached_at for c in changes if c.breached_at is not None]
    if breaches:
        signs.append(FailureSign.BREACH)
        began.append(min(breaches))
    named = sorted(
        {
            incident.id: incident
            for c in changes
            for incident, services in incidents
            if c.service in services
            and c.watched_from is not None
            and c.watched_until is not None
            and c.watched_from <= incident.opened_at <= c.watched_until
        }.values(),
        key=lambda i: (i.opened_at, i.id),
    )
    if named:
        signs.append(FailureSign.INCIDENT)
        began += [i.opened_at for i in named]
        restored += [i.resolved_at for i in named if i.resolved_at is not None]
    if not signs:
        return None
    return Failure(
        deployment_id=run.deployment_id,
        services=tuple(c.service for c in changes),
        finished_at=run.finished_at,
        signs=tuple(signs),
        incidents=tuple((i.id, i.severity) for i in named),
        began_at=min(began),
        restored_at=min(restored) if restored else None,
    )
