"""`/deploy stats`: delivery figures of one environment over a period, computed from the store's
records (docs/commands.md, "/deploy stats", defines each figure).

The use case reads the records (`store.delivery`); `compute` is a pure function of them.
Nothing here touches AWS or Slack.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from commands.deploy.parse import StatsRequest
from commands.deploy.replies import DeliveryStats, Failure, FailureSign
from pipeline.freezes import FREEZING_SEVERITIES, services_named
from pipeline.kernel.config import Config
from pipeline.kernel.config.watch import MAX_WATCH_S
from pipeline.kernel.ports import Clock
from store.delivery import Delivery, DeliveryRecords, EndedRun, IncidentSpan, WatchSpan
from store.deploy.models import DeploymentState

_FAILED = (DeploymentState.ROLLED_BACK, DeploymentState.ROLLBACK_FAILED)
# The change failures a reply lists, newest first (the figures count them all).
LISTED = 10


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
        """The figures of `request`'s environment over its period, up to now. Reads the store
        (three trips at most); never AWS or Slack."""
        until = self.clock.now()
        env = self.config.environment(request.environment)
        records = await self.delivery.records(
            env.name,
            env.promote_from,
            since=until - timedelta(days=request.days),
            until=until,
            service=request.service,
            severities=(
                FREEZING_SEVERITIES if env.name == self.config.incidents.environment else ()
            ),
        )
        named = {
            i.id: {
                s
                for s in services_named(i.service, i.summary, self.config) | set(i.services)
                if request.service in (None, s)
            }
            for i in records.incidents
        }
        watches = await self.delivery.watching(
            env.name,
            ((s, i.opened_at) for i in records.incidents for s in sorted(named[i.id])),
            longest_s=MAX_WATCH_S,
        )
        stats = compute(
            records, request, watches=watches, named=named, until=until, config=self.config
        )
        if request.service is not None or not stats.failures:
            return stats
        services = await self.delivery.services_of(f.deployment_id for f in stats.failures)
        return dataclasses.replace(
            stats,
            failures=tuple(
                dataclasses.replace(f, services=services.get(f.deployment_id, ()))
                for f in stats.failures
            ),
        )


def compute(
    records: DeliveryRecords,
    request: StatsRequest,
    *,
    watches: Sequence[WatchSpan],
    named: Mapping[str, set[str]],
    until: datetime,
    config: Config,
) -> DeliveryStats:
    """The figures of `records`' runs. `named`: the services each incident names (only
    `request.service`, when one is asked for); `watches`: the watches on when they opened.
    A failure's services are `request.service`, or none yet (the caller fills them in)."""
    source = config.environment(request.environment).promote_from
    runs = {r.id: r for r in records.runs}
    succeeded = [r for r in records.runs if r.state is DeploymentState.SUCCEEDED]
    lead_s = [(r.finished_at - r.requested_at).total_seconds() for r in succeeded]
    in_source_s: list[float] = []
    never_in_source = 0
    for p in records.promoted:
        asked = runs[p.deployment_id].requested_at
        if p.first_in_source is None or p.first_in_source > asked:
            never_in_source += 1
        else:
            in_source_s.append((asked - p.first_in_source).total_seconds())
    evidence = _evidence(records, watches, named, request.service)
    services = (request.service,) if request.service is not None else ()
    failures = [
        f
        for run in records.runs
        if (run.state in _FAILED or run.id in evidence)
        and (f := _failure(run, evidence.get(run.id, _NONE), services)) is not None
    ]
    newest = heapq.nlargest(LISTED, failures, key=lambda f: (f.finished_at, f.deployment_id))
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
        never_in_source=never_in_source if source is not None else 0,
        ended=len(records.runs),
        failed=len(failures),
        restored=len(restore_s),
        restore_median_s=median(restore_s),
        failures=tuple(newest),
    )


@dataclass
class _Evidence:
    """What says one deploy went wrong after it ended (for the service asked about, if one)."""

    taken_back: list[tuple[datetime, datetime]] = dataclasses.field(default_factory=list)
    """Each rollback that took back one of its services: asked, succeeded."""
    breaches: list[datetime] = dataclasses.field(default_factory=list)
    incidents: dict[str, IncidentSpan] = dataclasses.field(default_factory=dict)
    """The P1/P2s naming one of its services opened while that service was watched."""


_NONE = _Evidence()


def _evidence(
    records: DeliveryRecords,
    watches: Sequence[WatchSpan],
    named: Mapping[str, set[str]],
    service: str | None,
) -> defaultdict[str, _Evidence]:
    """The evidence against each deploy, by id (runs outside the period may appear: unused)."""
    found: defaultdict[str, _Evidence] = defaultdict(_Evidence)
    for t in records.taken_back:
        if service in (None, t.service):
            found[t.deployment_id].taken_back.append((t.requested_at, t.finished_at))
    for b in records.breaches:
        if service in (None, b.service):
            found[b.deployment_id].breaches.append(b.at)
    for i in records.incidents:
        for w in watches:
            if w.service in named[i.id] and w.started_at <= i.opened_at <= w.ends_at:
                found[w.deployment_id].incidents[i.id] = i
    return found


def _failure(run: EndedRun, evidence: _Evidence, services: tuple[str, ...]) -> Failure | None:
    """Why `run` counts as a change failure, when it does: when it went wrong (the earliest
    sign) and when service was restored (the earliest restore; None: not yet)."""
    signs: list[FailureSign] = []
    began: list[datetime] = []
    restored: list[datetime] = []
    if run.state in _FAILED:
        signs.append(FailureSign.FAILED)
        began.append(run.went_wrong_at or run.finished_at)
        if run.state is DeploymentState.ROLLED_BACK:
            restored.append(run.finished_at)
    if evidence.taken_back:
        signs.append(FailureSign.ROLLED_BACK)
        began += [asked for asked, _ in evidence.taken_back]
        restored += [done for _, done in evidence.taken_back]
    if evidence.breaches:
        signs.append(FailureSign.BREACH)
        began.append(min(evidence.breaches))
    incidents = sorted(evidence.incidents.values(), key=lambda i: (i.opened_at, i.id))
    if incidents:
        signs.append(FailureSign.INCIDENT)
        began += [i.opened_at for i in incidents]
        restored += [i.resolved_at for i in incidents if i.resolved_at is not None]
    if not signs:
        return None
    return Failure(
        deployment_id=run.id,
        services=services,
        finished_at=run.finished_at,
        signs=tuple(signs),
        incidents=tuple((i.id, i.severity) for i in incidents),
        began_at=min(began),
        restored_at=min(restored) if restored else None,
    )
