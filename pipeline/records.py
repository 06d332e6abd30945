"""The records of the runbook (seed 003), built from the store: the deployment record, the
failure report and the rollback instructions, as kept in S3 (`deployment-record-{id}.json`,
`deployment-failure-report-{id}.json`, `rollback-instructions-{id}.json`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pipeline.kernel.config import Environment, Service
from store.deploy.models import Deployment, DeploymentState, RunKind, Target, TargetStatus

_STATUS_WORDS = {
    DeploymentState.AWAITING_APPROVAL: "awaiting_approval",
    DeploymentState.APPROVED: "approved",
    DeploymentState.WAITING: "waiting",
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


def deployment_record(
    run: Deployment,
    *,
    now: datetime,
    window_minutes: float,
    backup_at: datetime | None = None,
) -> dict[str, Any]:
    """The deployment record of the runbook (seed 003), built from the store, as of `now`.

    `rollback_available` is true only while the rollback window is open: false after its
    deadline and after a rollback. `rollback_deadline` is the window's deadline when it had one.
    `backup_at`: when the backup was verified available (the timeline knows; None: unknown).
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
        # Seed 003 names the commit; the bot deploys image tags and never sees one.
        "git_sha": None,
        "git_ref": None,
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
        record["rollout_stages"] = _rollout_stages(run)
    if run.backup_id:
        record["database_backup"] = {
            "backup_id": run.backup_id,
            "location": "RDS snapshot",
            "timestamp": _iso(backup_at),
        }
    if run.migrations:
        # Seed 003 counts what was applied: a migration that failed applied nothing we know of.
        record["migrations_applied"] = sum(1 for m in run.migrations if m.exit_code == 0)
    if run.break_glass:
        record["break_glass"] = run.break_glass
    if run.skip_staging:
        record["skip_staging"] = run.skip_staging
    if run.is_rollback:
        record["reverts"] = run.reverts
        record["reason"] = run.reason
    if run.reverted_by is not None:
        record["rolled_back_by"] = run.reverted_by
    return record


def _rollout_stages(run: Deployment) -> list[dict[str, Any]]:
    """Each canary stage of `run` as seed 003's record names it, with its health figures."""
    return [
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


def _stage_name(position: int, weight: int) -> str:
    """Seed 003's names: canary, progressive, full (100% is always full)."""
    if weight == 100:
        return "full"
    return "canary" if position == 0 else "progressive"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def failure_report(
    run: Deployment, *, failed_stage: str, failed_services: Sequence[str]
) -> dict[str, Any]:
    """Seed 003's failure report: the deployment, the stage that failed and the services that
    failed (from the timeline: once rolled back, a target no longer says it failed, and the
    run's own `stage` is cleared when it ends), the backup, and what was rolled back."""
    return {
        "deployment_id": run.id,
        "version": ", ".join(sorted({t.target_version for t in run.active_targets})),
        "environment": run.environment,
        "status": _STATUS_WORDS[run.state],
        "failed_stage": failed_stage,
        "error": run.error,
        "failed_services": list(failed_services),
        "rolled_back": [
            t.service for t in run.active_targets if t.status is TargetStatus.ROLLED_BACK
        ],
        "rollback_failed": [
            t.service for t in run.active_targets if t.status is TargetStatus.ROLLBACK_FAILED
        ],
        "database_backup": run.backup_id,
        "action_required": run.state is DeploymentState.ROLLBACK_FAILED,
        "timestamp": _iso(run.finished_at or run.updated_at),
    }


def manual_command(run: Deployment, target: Target, *, env: Environment, svc: Service) -> str:
    """The AWS CLI command that undoes `run` for one service by hand: for a deploy, back to
    the revision it ran before; for a rollback run, on to the revision it was going back to.

    A canary is undone on its listener (or rule): all the traffic to the colour that runs the
    revision wanted, as the bot's own flip does; its ECS services stay as they are.
    """
    canary = svc.canary_in(env.name) if target.canary_colour else None
    if canary is not None and target.canary_colour is not None:
        if run.is_rollback:
            to = target.canary_colour
        else:
            to = "green" if target.canary_colour == "blue" else "blue"
        away = "green" if to == "blue" else "blue"
        forward = (
            "Type=forward,ForwardConfig={TargetGroups=["
            f"{{TargetGroupArn={canary.colour(to).target_group},Weight=100}},"
            f"{{TargetGroupArn={canary.colour(away).target_group},Weight=0}}]}}"
        )
        if canary.listener is not None:
            return (
                f"aws elbv2 modify-listener --region {env.region} "
                f"--listener-arn {canary.listener} --default-actions '{forward}'"
            )
        return (
            f"aws elbv2 modify-rule --region {env.region} --rule-arn {canary.rule} "
            f"--actions '{forward}'"
        )
    goal = target.new_task_def if run.is_rollback else target.previous_task_def
    return (
        f"aws ecs update-service --region {env.region} --cluster {env.cluster} "
        f"--service {svc.ecs_service} --task-definition {goal}"
    )


def rollback_instructions(
    run: Deployment, *, env: Environment, services: Mapping[str, Service]
) -> dict[str, Any]:
    """Seed 003's manual rollback instructions: for each service, the command that puts it
    back on the revision it ran before this run; the backup and its restore command."""
    steps = [
        {
            "service": t.service,
            "to_version": t.current_version,
            "command": manual_command(
                run.model_copy(update={"kind": RunKind.DEPLOY}), t, env=env, svc=services[t.service]
            ),
        }
        for t in run.active_targets
        if t.previous_task_def and t.service in services
    ]
    return {
        "deployment_id": run.id,
        "environment": run.environment,
        "rollback_window_minutes": (
            round((run.rollback_deadline - run.finished_at).total_seconds() / 60)
            if run.rollback_deadline and run.finished_at
            else 0
        ),
        "rollback_deadline": _iso(run.rollback_deadline),
        "chat": f"/rollback {run.environment} all",
        "steps": steps,
        "database_backup": run.backup_id,
        "restore_database": f"/deploy restore-db {run.id}" if run.backup_id else None,
    }
