"""The deployment record of the runbook (seed 003), built from the store."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from store.deploy.models import Deployment, DeploymentState, TargetStatus

ROLLBACK_WINDOW_MINUTES = 60


_STATUS_WORDS = {
    DeploymentState.AWAITING_APPROVAL: "awaiting_approval",
    DeploymentState.APPROVED: "approved",
    DeploymentState.RUNNING: "in_progress",
    DeploymentState.ROLLING_BACK: "rolling_back",
    DeploymentState.SUCCEEDED: "success",
    DeploymentState.ROLLED_BACK: "failed_rolled_back",
    DeploymentState.ROLLBACK_FAILED: "failed_rollback_failed",
    DeploymentState.REJECTED: "rejected",
    DeploymentState.EXPIRED: "expired",
    DeploymentState.CANCELLED: "cancelled",
}

_HEALTH_WORDS = {
    TargetStatus.HEALTHY: "healthy",
    TargetStatus.FAILED: "unhealthy",
    TargetStatus.ROLLED_BACK: "rolled_back",
    TargetStatus.ROLLBACK_FAILED: "rollback_failed",
    TargetStatus.SKIPPED: "skipped",
}


def deployment_record(run: Deployment) -> dict[str, Any]:
    """The deployment record of the runbook (seed 003), built from the store."""
    active = run.active_targets
    versions = sorted({t.target_version for t in active})
    succeeded = run.state is DeploymentState.SUCCEEDED
    rollback_available = succeeded and all(t.previous_task_def for t in active)
    deadline = (
        run.finished_at + timedelta(minutes=ROLLBACK_WINDOW_MINUTES)
        if rollback_available and run.finished_at
        else None
    )
    return {
        "timestamp": _iso(run.finished_at or run.updated_at),
        "deployment_id": run.id,
        "version": versions[0] if len(versions) == 1 else ", ".join(versions),
        "environment": run.environment,
        "status": _STATUS_WORDS[run.state],
        "triggered_by": run.requested_by,
        "approved_by": list(run.approved_by),
        "services_deployed": [t.service for t in active],
        "versions": {
            t.service: {"from": t.current_version, "to": t.target_version} for t in run.targets
        },
        "health_checks": {
            t.service.replace("-", "_"): _HEALTH_WORDS.get(t.status, "pending") for t in run.targets
        },
        "rollback_available": rollback_available,
        "rollback_window_minutes": ROLLBACK_WINDOW_MINUTES,
        "rollback_deadline": _iso(deadline),
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "error": run.error,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None
