"""Deployment values kept in SQLite: deployments, their targets, approvals and stage events."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import NewType

from pydantic import Field

from store.values import FrozenModel

DeploymentId = NewType("DeploymentId", str)


class DeploymentState(StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    WAITING = "waiting"
    RUNNING = "running"
    ROLLING_BACK = "rolling_back"
    SUCCEEDED = "succeeded"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def words(self) -> str:
        """The state as people read it: `rolling back`, `awaiting approval`."""
        return self.value.replace("_", " ")

    @property
    def finished(self) -> bool:
        return self in _FINISHED

    @property
    def in_flight(self) -> bool:
        """Approved and not yet finished: the runner owns it."""
        return self in (
            DeploymentState.APPROVED,
            DeploymentState.WAITING,
            DeploymentState.RUNNING,
            DeploymentState.ROLLING_BACK,
        )


_FINISHED = frozenset(
    {
        DeploymentState.SUCCEEDED,
        DeploymentState.ROLLED_BACK,
        DeploymentState.ROLLBACK_FAILED,
        DeploymentState.REJECTED,
        DeploymentState.EXPIRED,
        DeploymentState.CANCELLED,
    }
)


class RunKind(StrEnum):
    DEPLOY = "deploy"
    ROLLBACK = "rollback"
    RESTORE = "restore"
    """A database restore to a new instance (`/deploy restore-db`); it has no targets."""


class TargetStatus(StrEnum):
    PENDING = "pending"
    SKIPPED = "skipped"
    REGISTERED = "registered"
    UPDATING = "updating"
    STABLE = "stable"
    HEALTHY = "healthy"
    FAILED = "failed"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class Target(FrozenModel):
    service: str
    current_version: str | None
    target_version: str
    previous_task_def: str | None = None
    new_task_def: str | None = None
    status: TargetStatus = TargetStatus.PENDING
    detail: str | None = None
    reverted_by: DeploymentId | None = None
    """The rollback run that took this service back (deploys only)."""
    reverts: DeploymentId | None = None
    """The deploy whose change of this service a rollback takes back (rollbacks only)."""
    canary_colour: str | None = None
    """A canary: the colour (blue/green) the new revision runs on; the other is the old one."""
    image_digest: str | None = None
    """The new image's digest in ECR, checked before the run."""

    @property
    def old_colour(self) -> str | None:
        if self.canary_colour is None:
            return None
        return "blue" if self.canary_colour == "green" else "green"

    @property
    def changed_ecs(self) -> bool:
        """True once an update_service towards the new revision may have been sent."""
        return self.status not in (
            TargetStatus.PENDING,
            TargetStatus.SKIPPED,
            TargetStatus.REGISTERED,
        )


class StageStatus(StrEnum):
    BAKING = "baking"
    HELD = "held"
    PASSED = "passed"
    PROMOTED = "promoted"
    FAILED = "failed"
    ABORTED = "aborted"


class ServiceFigures(FrozenModel):
    """What one service's new colour showed during a canary stage, at the last check."""

    data: bool = False
    """CloudWatch had data points for it."""
    healthy: bool | None = None
    health_detail: str | None = None
    requests: float = 0
    errors_5xx: float = 0
    slowest_s: float | None = None
    slow: bool = False
    gate: str | None = None


class RolloutStage(FrozenModel):
    """One stage of a canary run (seed 003: canary 5%, progressive 50%, full 100%)."""

    position: int
    weight: int
    bake_s: float
    status: StageStatus
    started_at: datetime
    ended_at: datetime | None = None
    elapsed_s: float = 0.0
    held_by: str | None = None
    held_at: datetime | None = None
    promoted_by: str | None = None
    aborted_by: str | None = None
    detail: str | None = None
    figures: dict[str, ServiceFigures] = Field(default_factory=dict)

    @property
    def left_s(self) -> float:
        return max(self.bake_s - self.elapsed_s, 0.0)


class MigrationRun(FrozenModel):
    """A service's migration task: which task, how it ended, where its logs are."""

    service: str
    task: str | None = None
    exit_code: int | None = None
    stopped_reason: str | None = None
    log_url: str | None = None


class UndoneMigrations(FrozenModel):
    """A deploy a rollback takes back that ran migrations: the database keeps them."""

    deployment_id: str
    services: tuple[str, ...]
    """The services whose migrations ran."""


class Restore(FrozenModel):
    """A database restore: the snapshot, the NEW instance, and its endpoint once available."""

    snapshot: str
    instance: str
    source: str
    deployment: str
    endpoint: str | None = None


class SourceSetback(FrozenModel):
    """A version that failed, or was rolled back, in the environment a deploy promotes from,
    within a day of the plan: its plan card warns the approvers of it (issue 16)."""

    environment: str
    """The source environment, where it went wrong."""
    version: str
    services: tuple[str, ...]
    """The services of the plan that ran this version in that run."""
    at: datetime
    """When it failed, or when the rollback began."""
    run_id: DeploymentId
    """The deploy that failed, or the rollback run that took the version back."""
    rollback: bool = False
    """`run_id` is a rollback run (`/rollback`, a Roll back button), not the failed deploy."""
    by: str | None = None
    """The person who took it back (a rollback, an Abort, a `/rollback` that stopped it)."""
    reason: str | None = None
    """Why: the failure, or what the person typed."""
    reason_line: str | None = None
    """`reason` as its sentence (JSON), when it names people: drawn with their mentions."""
    timezone: str = "UTC"
    """The time zone the plan shows `at` in (the target environment's schedule)."""


class Approval(FrozenModel):
    user_id: str
    decision: Decision
    at: datetime


class Deployment(FrozenModel):
    id: DeploymentId
    environment: str
    requested_by: str
    version: str | None
    state: DeploymentState
    stage: str | None
    required_approvals: int
    channel_id: str | None
    message_ts: str | None
    created_at: datetime
    updated_at: datetime
    approval_due_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    targets: tuple[Target, ...] = ()
    error_line: str | None = None
    """The error as its sentence (`pipeline.kernel.text.Line.dumps`), naming people as people;
    `error` is its plain text."""
    approvals: tuple[Approval, ...] = ()
    kind: RunKind = RunKind.DEPLOY
    reverts: DeploymentId | None = None
    """A rollback: the deployment it takes back (None for a rollback to a named version)."""
    reason: str | None = None
    """Why a rollback was asked for, as typed."""
    rollback_deadline: datetime | None = None
    """A successful deploy: until when it can be rolled back without approvals."""
    window_closed_at: datetime | None = None
    """When that window closed: its deadline, or the rollback that took back its last service
    (a rollback of some of its services leaves the others inside the window)."""
    reverted_by: DeploymentId | None = None
    """A deploy every service of which a rollback took back."""
    stages: tuple[RolloutStage, ...] = ()
    """A canary run's stages so far, in order."""
    old_colours_retired_at: datetime | None = None
    """A canary deploy: when its old colours were scaled to 0 (its window closed)."""
    break_glass: str | None = None
    """Deployed outside the windows or during a freeze, and why (one more approval needed)."""
    skip_staging: str | None = None
    """A hotfix that skipped the promotion health check, and why."""
    wait_until: datetime | None = None
    """The end of the wait after the last approval."""
    backup_id: str | None = None
    """The database snapshot taken before migrations."""
    migrations: tuple[MigrationRun, ...] = ()
    records_written: tuple[str, ...] = ()
    """The S3 keys of the records written for this run."""
    restore: Restore | None = None
    undoes_migrations: tuple[UndoneMigrations, ...] = ()
    """A rollback: the deploys it takes back that ran migrations (newest first)."""
    source_setbacks: tuple[SourceSetback, ...] = ()
    """A promotion: what of it failed or was rolled back lately where it is promoted from."""

    @property
    def current_stage(self) -> RolloutStage | None:
        return self.stages[-1] if self.stages else None

    @property
    def is_rollback(self) -> bool:
        return self.kind is RunKind.ROLLBACK

    def window_open(self, now: datetime) -> bool:
        """True while this deploy can be rolled back without approvals."""
        return (
            self.state is DeploymentState.SUCCEEDED
            and self.rollback_deadline is not None
            and self.window_closed_at is None
            and self.reverted_by is None
            and now < self.rollback_deadline
        )

    @property
    def active_targets(self) -> tuple[Target, ...]:
        return tuple(t for t in self.targets if t.status is not TargetStatus.SKIPPED)

    @property
    def not_taken_back(self) -> tuple[Target, ...]:
        """The targets of this run that no rollback took back yet."""
        return tuple(t for t in self.active_targets if t.reverted_by is None)

    @property
    def approved_by(self) -> tuple[str, ...]:
        return tuple(a.user_id for a in self.approvals if a.decision is Decision.APPROVE)

    @property
    def rejected_by(self) -> str | None:
        return next((a.user_id for a in self.approvals if a.decision is Decision.REJECT), None)


class StageEvent(FrozenModel):
    deployment_id: DeploymentId
    at: datetime
    stage: str
    status: str
    service: str | None = None
    detail: str | None = None
    detail_line: str | None = None
    """The detail as its sentence (JSON), when it names people; `detail` is its plain text."""
