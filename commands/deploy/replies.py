"""What `/deploy` answers besides sentences: a deployment record, the history, a dry run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

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
