"""Deployment values kept in SQLite: deployments, their targets, approvals and stage events."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import NewType

from store.values import FrozenModel

DeploymentId = NewType("DeploymentId", str)


class DeploymentState(StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    RUNNING = "running"
    ROLLING_BACK = "rolling_back"
    SUCCEEDED = "succeeded"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in _FINISHED

    @property
    def in_flight(self) -> bool:
        """Approved and not yet finished: the runner owns it."""
        return self in (
            DeploymentState.APPROVED,
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

    @property
    def changed_ecs(self) -> bool:
        """True once an update_service towards the new revision may have been sent."""
        return self.status not in (
            TargetStatus.PENDING,
            TargetStatus.SKIPPED,
            TargetStatus.REGISTERED,
        )


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
    approvals: tuple[Approval, ...] = ()

    @property
    def active_targets(self) -> tuple[Target, ...]:
        return tuple(t for t in self.targets if t.status is not TargetStatus.SKIPPED)

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
