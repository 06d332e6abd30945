"""How a deployment lies in SQLite: the `deployments` row, one `deployment_targets` row per
service, its `approvals` and `rollout_stages`, and the column values repositories write.

Plain functions of a `Database`; callers run them on the store thread.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from store.database import Database
from store.deploy.models import (
    Approval,
    Decision,
    Deployment,
    DeploymentId,
    DeploymentState,
    MigrationRun,
    Restore,
    RolloutStage,
    RunKind,
    ServiceFigures,
    SourceSetback,
    StageStatus,
    Target,
    TargetStatus,
    UndoneMigrations,
)


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def columns(fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` as SQLite stores them: datetimes as ISO text, models and lists as JSON, enums
    by value, anything else as it is."""
    out = {}
    for key, value in fields.items():
        if isinstance(value, datetime):
            out[key] = value.isoformat()
        elif isinstance(value, BaseModel):
            out[key] = value.model_dump_json()
        elif isinstance(value, list | tuple):
            out[key] = json.dumps(
                [v.model_dump() if isinstance(v, BaseModel) else v for v in value]
            )
        elif hasattr(value, "value") and isinstance(value.value, str):
            out[key] = value.value
        else:
            out[key] = value
    return out


def deployment_row(run: Deployment) -> dict[str, Any]:
    """The `deployments` row of `run` (its targets go in `target_row`s)."""
    return {
        "id": run.id,
        "environment": run.environment,
        "requested_by": run.requested_by,
        "version": run.version,
        "state": run.state.value,
        "stage": run.stage,
        "required_approvals": run.required_approvals,
        "channel_id": run.channel_id,
        "message_ts": run.message_ts,
        "created_at": run.created_at.isoformat(),
        "updated_at": run.updated_at.isoformat(),
        "approval_due_at": _ts(run.approval_due_at),
        "started_at": _ts(run.started_at),
        "finished_at": _ts(run.finished_at),
        "error": run.error,
        "error_line": run.error_line,
        "kind": run.kind.value,
        "reverts": run.reverts,
        "reason": run.reason,
        "rollback_deadline": _ts(run.rollback_deadline),
        "window_closed_at": _ts(run.window_closed_at),
        "reverted_by": run.reverted_by,
        "old_colours_retired_at": _ts(run.old_colours_retired_at),
        "break_glass": run.break_glass,
        "skip_staging": run.skip_staging,
        "wait_until": _ts(run.wait_until),
        "backup_id": run.backup_id,
        "migrations": json.dumps([m.model_dump() for m in run.migrations]),
        "records_written": json.dumps(list(run.records_written)),
        "restore": run.restore.model_dump_json() if run.restore else None,
        "undoes_migrations": json.dumps([m.model_dump() for m in run.undoes_migrations]),
        "source_setbacks": json.dumps([s.model_dump(mode="json") for s in run.source_setbacks]),
    }


def target_row(deployment_id: str, position: int, t: Target) -> dict[str, Any]:
    """The `deployment_targets` row of the run's `position`th target."""
    return {
        "deployment_id": deployment_id,
        "position": position,
        "service": t.service,
        "current_version": t.current_version,
        "target_version": t.target_version,
        "previous_task_def": t.previous_task_def,
        "new_task_def": t.new_task_def,
        "status": t.status.value,
        "detail": t.detail,
        "reverted_by": t.reverted_by,
        "reverts": t.reverts,
        "canary_colour": t.canary_colour,
        "image_digest": t.image_digest,
    }


def load_deployment(db: Database, deployment_id: str) -> Deployment | None:
    """The run `deployment_id` with its targets, approvals and canary stages; None when there
    is none."""
    cur = db.execute("SELECT * FROM deployments WHERE id = ?", [deployment_id])
    row = cur.fetchone()
    if row is None:
        return None
    r = dict(zip([c[0] for c in cur.description], row, strict=True))
    created = _dt(r["created_at"])
    updated = _dt(r["updated_at"])
    assert created is not None
    assert updated is not None
    return Deployment(
        id=DeploymentId(r["id"]),
        environment=r["environment"],
        requested_by=r["requested_by"],
        version=r["version"],
        state=DeploymentState(r["state"]),
        stage=r["stage"],
        required_approvals=r["required_approvals"],
        channel_id=r["channel_id"],
        message_ts=r["message_ts"],
        created_at=created,
        updated_at=updated,
        approval_due_at=_dt(r["approval_due_at"]),
        started_at=_dt(r["started_at"]),
        finished_at=_dt(r["finished_at"]),
        error=r["error"],
        error_line=r["error_line"],
        targets=_targets(db, deployment_id),
        approvals=_approvals(db, deployment_id),
        kind=RunKind(r["kind"]),
        reverts=r["reverts"],
        reason=r["reason"],
        rollback_deadline=_dt(r["rollback_deadline"]),
        window_closed_at=_dt(r["window_closed_at"]),
        reverted_by=r["reverted_by"],
        stages=_stages(db, deployment_id),
        old_colours_retired_at=_dt(r["old_colours_retired_at"]),
        break_glass=r["break_glass"],
        skip_staging=r["skip_staging"],
        wait_until=_dt(r["wait_until"]),
        backup_id=r["backup_id"],
        migrations=tuple(MigrationRun.model_validate(m) for m in json.loads(r["migrations"])),
        records_written=tuple(json.loads(r["records_written"])),
        restore=Restore.model_validate_json(r["restore"]) if r["restore"] else None,
        undoes_migrations=tuple(
            UndoneMigrations.model_validate(m) for m in json.loads(r["undoes_migrations"])
        ),
        source_setbacks=tuple(
            SourceSetback.model_validate(s) for s in json.loads(r["source_setbacks"])
        ),
    )


def _targets(db: Database, deployment_id: str) -> tuple[Target, ...]:
    return tuple(
        Target(
            service=t[0],
            current_version=t[1],
            target_version=t[2],
            previous_task_def=t[3],
            new_task_def=t[4],
            status=TargetStatus(t[5]),
            detail=t[6],
            reverted_by=t[7],
            reverts=t[8],
            canary_colour=t[9],
            image_digest=t[10],
        )
        for t in db.execute(
            "SELECT service, current_version, target_version, previous_task_def, new_task_def, "
            "status, detail, reverted_by, reverts, canary_colour, image_digest "
            "FROM deployment_targets "
            "WHERE deployment_id = ? "
            "ORDER BY position",
            [deployment_id],
        ).fetchall()
    )


def _approvals(db: Database, deployment_id: str) -> tuple[Approval, ...]:
    return tuple(
        Approval(user_id=a[0], decision=Decision(a[1]), at=datetime.fromisoformat(a[2]))
        for a in db.execute(
            "SELECT user_id, decision, at FROM approvals WHERE deployment_id = ? "
            "ORDER BY at, rowid",
            [deployment_id],
        ).fetchall()
    )


def _stages(db: Database, deployment_id: str) -> tuple[RolloutStage, ...]:
    rows = db.execute(
        "SELECT position, weight, bake_s, status, started_at, ended_at, elapsed_s, held_by, "
        "held_at, promoted_by, detail, figures, aborted_by FROM rollout_stages "
        "WHERE deployment_id = ? ORDER BY position",
        [deployment_id],
    ).fetchall()
    return tuple(
        RolloutStage(
            position=r[0],
            weight=r[1],
            bake_s=r[2],
            status=StageStatus(r[3]),
            started_at=datetime.fromisoformat(r[4]),
            ended_at=_dt(r[5]),
            elapsed_s=r[6],
            held_by=r[7],
            held_at=_dt(r[8]),
            promoted_by=r[9],
            aborted_by=r[12],
            detail=r[10],
            figures={
                k: ServiceFigures.model_validate(v) for k, v in json.loads(r[11] or "{}").items()
            },
        )
        for r in rows
    )
