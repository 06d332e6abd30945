"""What `/deploy` answers besides sentences: a deployment record, the history, a dry run, the
delivery figures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from commands.deploy.parse import DeployRequest
from pipeline.preflight import Check
from store.deploy.models import Deployment, Target


@dataclass(frozen=True)
class Record:
    """Reply: one run as of `now`: a short summary, or (`as_json`) its whole record."""

    run: Deployment
    now: datetime
    window_minutes: float
    as_json: bool = False


@dataclass(frozen=True)
class History:
    """Reply: the latest runs, in one environment or all, and the rollbacks that reverted any."""

    runs: tuple[Deployment, ...]
    environment: str | None
    reverters: Mapping[str, Deployment] = field(default_factory=dict)


@dataclass(frozen=True)
class DryRun:
    """Reply: what a deploy would do and every pre-flight check's result; nothing changed."""

    environment: str
    targets: tuple[Target, ...]
    checks: tuple[Check, ...]
    approvals: int
    request: DeployRequest


class FailureSign(StrEnum):
    """What made a deploy a change failure (docs/commands.md, "/deploy stats")."""

    FAILED = "failed"
    ROLLED_BACK = "rolled back"
    BREACH = "watch breach"
    INCIDENT = "incident"


@dataclass(frozen=True)
class Failure:
    """A deploy that counts as a change failure: why, when it went wrong, when service was
    restored (None: not yet)."""

    deployment_id: str
    services: tuple[str, ...]
    finished_at: datetime
    signs: tuple[FailureSign, ...]
    incidents: tuple[tuple[str, str], ...]
    """The P1/P2 incidents (id, severity) that name its services within its watch."""
    began_at: datetime
    restored_at: datetime | None


@dataclass(frozen=True)
class DeliveryStats:
    """Reply: the delivery figures of one environment (one service of it, when asked) over the
    `days` up to `until`. A figure with nothing to compute it from is None."""

    environment: str
    days: int
    service: str | None
    since: datetime
    until: datetime
    deploys: int
    """Deploys that succeeded in the period."""
    lead_median_s: float | None
    lead_p90_s: float | None
    source: str | None
    """The environment promoted from (`promote_from`); None when there is none."""
    in_source_median_s: float | None
    in_source_versions: int
    """Versions promoted that had succeeded in `source` before the promotion was asked for."""
    never_in_source: int
    """Versions promoted that had not (a hotfix that skipped staging, say)."""
    ended: int
    """Deploys that ended in the period (succeeded or failed): the failure rate's base."""
    failed: int
    """Those of them that are change failures."""
    restored: int
    """Those change failures after which service was restored."""
    restore_median_s: float | None
    failures: tuple[Failure, ...]
    """The newest change failures (a handful), newest first."""

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.ended if self.ended else None
