"""The deployment record of the runbook (seed 003), built from the store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from store.deploy.models import Deployment, DeploymentState, TargetStatus

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


def deployment_record(run: Deployment, *, now: datetime, window_minutes: float) -> dict[str, Any]:
    """The deployment record of the runbook (seed 003), built from the store, as of `now`.

    `rollback_available` is true only while the rollback window is open: false after its
    deadline and after a rollback. `rollback_deadline` is the window's deadline when it had one.
    """
    active = run.active_targets
    versions = sorted({t.target_version for t in active})
    record: dict[str, Any] = {
        "timestamp": _iso(run.finished_at or run.updated_at),
        "deployment_id": run.id,
        "kind": run.kind.value,
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
        "rollback_available": run.window_open(now),
        "rollback_window_minutes": round(window_minutes),
        "rollback_deadline": _iso(run.rollback_deadline),
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "error": run.error,
    }
    if run.stages:
        record["rollout_stages"] = [
            {
                "stage": _stage_name(s.position, s.weight),
                "traffic_percentage": s.weight,
                "duration_minutes": round(s.bake_s / 60, 2),
                "started_at": _iso(s.started_at),
                "ended_at": _iso(s.ended_at),
                "status": s.status.value,
                "health_checks": {
                    name: {
                        "healthy": f.healthy,
                        "requests": f.requests,
                        "errors_5xx": f.errors_5xx,
                        "slowest_s": f.slowest_s,
                    }
                    for name, f in s.figures.items()
                },
            }
            for s in run.stages
        ]
    if run.is_rollback:
        record["reverts"] = run.reverts
        record["reason"] = run.reason
    if run.reverted_by is not None:
        record["rolled_back_by"] = run.reverted_by
    return record


def _stage_name(position: int, weight: int) -> str:
    """Seed 003's names: canary, progressive, full (100% is always full)."""
    if weight == 100:
        return "full"
    return "canary" if position == 0 else "progressive"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None
