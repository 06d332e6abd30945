"""Deployment records: create, read, compare-and-set transitions, approvals, the stage timeline."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils
from pydantic import BaseModel

from store.db import Store
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
    StageEvent,
    StageStatus,
    Target,
    TargetStatus,
    UndoneMigrations,
)

_IN_FLIGHT = tuple(s.value for s in DeploymentState if s.in_flight)


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class DecisionResult:
    """What recording an approve/reject click did."""

    counted: bool
    """False when this user had already decided (a double click, a Slack retry)."""
    started: bool
    """True when this click moved the run to APPROVED."""
    conflict_with: DeploymentId | None
    """Set when the last approval landed while another run holds one of the services."""
    deployment: Deployment


class Deployments:
    """Repository of deployments. Every method runs on the store thread."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def create(self, run: Deployment) -> None:
        def insert(db: sqlite_utils.Database) -> None:
            with db.atomic():
                db.table("deployments").insert(_row(run))
                db.table("deployment_targets").insert_all(
                    _target_row(run.id, i, t) for i, t in enumerate(run.targets)
                )

        await self._store.call(insert)

    async def get(self, deployment_id: str) -> Deployment | None:
        return await self._store.call(lambda db: _load(db, deployment_id))

    async def list_recent(
        self, *, environment: str | None = None, limit: int = 10
    ) -> list[Deployment]:
        def query(db: sqlite_utils.Database) -> list[Deployment]:
            where, args = ("WHERE environment = ?", [environment]) if environment else ("", [])
            ids = db.execute(
                f"SELECT id FROM deployments {where} ORDER BY created_at DESC, id DESC LIMIT ?",  # noqa: S608
                [*args, limit],
            ).fetchall()
            return [d for (i,) in ids if (d := _load(db, i)) is not None]

        return await self._store.call(query)

    async def in_states(self, states: Iterable[DeploymentState]) -> list[Deployment]:
        wanted = [s.value for s in states]

        def query(db: sqlite_utils.Database) -> list[Deployment]:
            marks = ",".join("?" * len(wanted))
            ids = db.execute(
                f"SELECT id FROM deployments WHERE state IN ({marks}) ORDER BY created_at",  # noqa: S608
                wanted,
            ).fetchall()
            return [d for (i,) in ids if (d := _load(db, i)) is not None]

        return await self._store.call(query)

    async def finished_since(self, *, environment: str, since: datetime) -> list[Deployment]:
        """Runs in `environment` that finished at or after `since`, newest first."""

        def query(db: sqlite_utils.Database) -> list[Deployment]:
            ids = db.execute(
                "SELECT id FROM deployments WHERE environment = ? AND finished_at >= ? "
                "ORDER BY finished_at DESC",
                [environment, since.isoformat()],
            ).fetchall()
            return [d for (i,) in ids if (d := _load(db, i)) is not None]

        return await self._store.call(query)

    async def transition(
        self,
        deployment_id: str,
        *,
        from_states: Sequence[DeploymentState],
        to: DeploymentState,
        at: datetime,
        **fields: Any,
    ) -> bool:
        """Compare-and-set the state. Returns False (changing nothing) if the state had moved on."""
        values = {"state": to.value, "updated_at": at.isoformat(), **_columns(fields)}

        def cas(db: sqlite_utils.Database) -> bool:
            sets = ", ".join(f"{k} = ?" for k in values)
            marks = ",".join("?" * len(from_states))
            cur = db.execute(
                f"UPDATE deployments SET {sets} WHERE id = ? AND state IN ({marks})",  # noqa: S608
                [*values.values(), deployment_id, *(s.value for s in from_states)],
            )
            return cur.rowcount == 1

        return await self._store.call(cas)

    async def set_fields(self, deployment_id: str, *, at: datetime, **fields: Any) -> None:
        """Update non-state columns (stage, message_ts, error)."""
        values = {"updated_at": at.isoformat(), **_columns(fields)}
        await self._store.call(lambda db: db.table("deployments").update(deployment_id, values))

    async def update_target(self, deployment_id: str, service: str, **fields: Any) -> None:
        values = _columns(fields)

        def update(db: sqlite_utils.Database) -> None:
            sets = ", ".join(f"{k} = ?" for k in values)
            db.execute(
                f"UPDATE deployment_targets SET {sets} WHERE deployment_id = ? AND service = ?",  # noqa: S608
                [*values.values(), deployment_id, service],
            )

        await self._store.call(update)

    async def record_event(self, event: StageEvent) -> None:
        await self._store.call(
            lambda db: db.table("deployment_events").insert(
                {
                    "deployment_id": event.deployment_id,
                    "at": event.at.isoformat(),
                    "stage": event.stage,
                    "service": event.service,
                    "status": event.status,
                    "detail": event.detail,
                }
            )
        )

    async def events(self, deployment_id: str) -> list[StageEvent]:
        def query(db: sqlite_utils.Database) -> list[StageEvent]:
            rows = db.execute(
                "SELECT deployment_id, at, stage, service, status, detail FROM deployment_events "
                "WHERE deployment_id = ? ORDER BY id",
                [deployment_id],
            ).fetchall()
            return [
                StageEvent(
                    deployment_id=DeploymentId(r[0]),
                    at=datetime.fromisoformat(r[1]),
                    stage=r[2],
                    service=r[3],
                    status=r[4],
                    detail=r[5],
                )
                for r in rows
            ]

        return await self._store.call(query)

    async def record_decision(
        self, deployment_id: str, *, user_id: str, decision: Decision, at: datetime
    ) -> DecisionResult:
        """Record one approver's click, once, and move the run on when it settles it.

        In one transaction: the click is ignored unless the run awaits approval and this user has
        not decided yet; a reject ends the run; the Nth distinct approval moves it to APPROVED
        unless another in-flight run in the same environment holds one of its services.
        """

        def decide(db: sqlite_utils.Database) -> DecisionResult:
            with db.atomic():
                run = _load(db, deployment_id)
                if run is None:
                    raise KeyError(deployment_id)
                if run.state is not DeploymentState.AWAITING_APPROVAL or any(
                    a.user_id == user_id for a in run.approvals
                ):
                    return DecisionResult(False, False, None, run)
                conflict = None
                if (
                    decision is Decision.APPROVE
                    and len(run.approved_by) + 1 >= run.required_approvals
                ):
                    conflict = _conflicting_run(db, run)
                    if conflict is not None:
                        return DecisionResult(False, False, conflict, run)
                db.table("approvals").insert(
                    {
                        "deployment_id": deployment_id,
                        "user_id": user_id,
                        "decision": decision.value,
                        "at": at.isoformat(),
                    }
                )
                new_state = None
                if decision is Decision.REJECT:
                    new_state = DeploymentState.REJECTED
                elif len(run.approved_by) + 1 >= run.required_approvals:
                    new_state = DeploymentState.APPROVED
                if new_state is not None:
                    fields: dict[str, Any] = {
                        "state": new_state.value,
                        "updated_at": at.isoformat(),
                    }
                    if new_state is DeploymentState.REJECTED:
                        fields["finished_at"] = at.isoformat()
                    db.table("deployments").update(deployment_id, fields)
                after = _load(db, deployment_id)
                assert after is not None
                return DecisionResult(True, new_state is DeploymentState.APPROVED, None, after)

        return await self._store.call(decide)

    async def start_unapproved(self, deployment_id: str, *, at: datetime) -> DeploymentId | None:
        """Move a run needing no approvals to APPROVED. Returns a conflicting run's id instead."""

        def start(db: sqlite_utils.Database) -> DeploymentId | None:
            with db.atomic():
                run = _load(db, deployment_id)
                if run is None:
                    raise KeyError(deployment_id)
                conflict = _conflicting_run(db, run)
                if conflict is None:
                    db.execute(
                        "UPDATE deployments SET state = ?, updated_at = ? "
                        "WHERE id = ? AND state = ?",
                        [
                            DeploymentState.APPROVED.value,
                            at.isoformat(),
                            deployment_id,
                            DeploymentState.AWAITING_APPROVAL.value,
                        ],
                    )
                return conflict

        return await self._store.call(start)

    async def succeeded(
        self, *, environment: str, kind: RunKind | None = None, limit: int = 200
    ) -> list[Deployment]:
        """Succeeded runs in `environment` (of `kind`, if given), newest first."""

        def query(db: sqlite_utils.Database) -> list[Deployment]:
            where = "environment = ? AND state = ?"
            args: list[Any] = [environment, DeploymentState.SUCCEEDED.value]
            if kind is not None:
                where += " AND kind = ?"
                args.append(kind.value)
            ids = db.execute(
                f"SELECT id FROM deployments WHERE {where} "  # noqa: S608
                "ORDER BY finished_at DESC, created_at DESC, id DESC LIMIT ?",
                [*args, limit],
            ).fetchall()
            return [d for (i,) in ids if (d := _load(db, i)) is not None]

        return await self._store.call(query)

    async def rollbacks_in(self, channel_id: str, *, since: datetime) -> list[Deployment]:
        """Rollback runs asked for in `channel_id` (a war room) since `since`, oldest first."""

        def query(db: sqlite_utils.Database) -> list[Deployment]:
            ids = db.execute(
                "SELECT id FROM deployments WHERE kind = ? AND channel_id = ? AND created_at >= ? "
                "ORDER BY created_at",
                [RunKind.ROLLBACK.value, channel_id, since.isoformat()],
            ).fetchall()
            return [d for (i,) in ids if (d := _load(db, i)) is not None]

        return await self._store.call(query)

    async def open_windows(self) -> list[Deployment]:
        """Succeeded deploys whose rollback window has not closed, oldest deadline first."""

        def query(db: sqlite_utils.Database) -> list[Deployment]:
            ids = db.execute(
                "SELECT id FROM deployments WHERE state = ? AND rollback_deadline IS NOT NULL "
                "AND window_closed_at IS NULL ORDER BY rollback_deadline",
                [DeploymentState.SUCCEEDED.value],
            ).fetchall()
            return [d for (i,) in ids if (d := _load(db, i)) is not None]

        return await self._store.call(query)

    async def close_window(self, deployment_id: str, *, at: datetime) -> bool:
        """Close a deploy's rollback window (once). False when it was closed already."""

        def close(db: sqlite_utils.Database) -> bool:
            cur = db.execute(
                "UPDATE deployments SET window_closed_at = ?, updated_at = ? "
                "WHERE id = ? AND window_closed_at IS NULL AND rollback_deadline IS NOT NULL",
                [at.isoformat(), at.isoformat(), deployment_id],
            )
            return cur.rowcount == 1

        return await self._store.call(close)

    async def mark_reverted(
        self, deployment_id: str, *, services: Iterable[str], by: str, at: datetime
    ) -> Deployment | None:
        """Record that rollback `by` took `services` of a deploy back; its window closes, and
        when every service is back the deploy itself is marked reverted."""
        names = list(services)

        def mark(db: sqlite_utils.Database) -> Deployment | None:
            with db.atomic():
                marks = ",".join("?" * len(names))
                db.execute(
                    f"UPDATE deployment_targets SET reverted_by = ? "  # noqa: S608
                    f"WHERE deployment_id = ? AND service IN ({marks}) AND reverted_by IS NULL",
                    [by, deployment_id, *names],
                )
                run = _load(db, deployment_id)
                if run is None:
                    return None
                fields: dict[str, Any] = {"updated_at": at.isoformat()}
                if run.window_closed_at is None and run.rollback_deadline is not None:
                    fields["window_closed_at"] = at.isoformat()
                if all(t.reverted_by for t in run.active_targets):
                    fields["reverted_by"] = by
                db.table("deployments").update(deployment_id, fields)
                return _load(db, deployment_id)

        return await self._store.call(mark)

    async def start_stage(
        self, deployment_id: str, *, position: int, weight: int, bake_s: float, at: datetime
    ) -> bool:
        """Record the start of a canary stage, once. False when it had started already."""

        def start(db: sqlite_utils.Database) -> bool:
            cur = db.execute(
                "INSERT OR IGNORE INTO rollout_stages (deployment_id, position, weight, bake_s, "
                "status, started_at) VALUES (?, ?, ?, ?, ?, ?)",
                [deployment_id, position, weight, bake_s, StageStatus.BAKING.value, at.isoformat()],
            )
            return cur.rowcount == 1

        return await self._store.call(start)

    async def stage_progress(
        self,
        deployment_id: str,
        *,
        position: int,
        elapsed_s: float,
        figures: Mapping[str, ServiceFigures],
    ) -> None:
        """Keep how much bake time a stage has used and the figures it saw last."""
        data = json.dumps({k: v.model_dump(mode="json") for k, v in figures.items()})
        await self._store.call(
            lambda db: db.execute(
                "UPDATE rollout_stages SET elapsed_s = ?, figures = ? "
                "WHERE deployment_id = ? AND position = ?",
                [elapsed_s, data, deployment_id, position],
            )
        )

    async def end_stage(
        self,
        deployment_id: str,
        *,
        position: int,
        status: StageStatus,
        at: datetime,
        detail: str | None = None,
    ) -> bool:
        """End a baking or held stage, once."""

        def end(db: sqlite_utils.Database) -> bool:
            cur = db.execute(
                "UPDATE rollout_stages SET status = ?, ended_at = ?, detail = COALESCE(?, detail) "
                "WHERE deployment_id = ? AND position = ? AND status IN (?, ?)",
                [
                    status.value,
                    at.isoformat(),
                    detail,
                    deployment_id,
                    position,
                    StageStatus.BAKING.value,
                    StageStatus.HELD.value,
                ],
            )
            return cur.rowcount == 1

        return await self._store.call(end)

    async def steer_stage(
        self,
        deployment_id: str,
        *,
        position: int,
        from_status: StageStatus,
        to_status: StageStatus,
        **fields: Any,
    ) -> bool:
        """Compare-and-set a running stage's status (hold, resume), with extra columns."""
        values = {"status": to_status.value, **_columns(fields)}

        def steer(db: sqlite_utils.Database) -> bool:
            sets = ", ".join(f"{k} = ?" for k in values)
            cur = db.execute(
                f"UPDATE rollout_stages SET {sets} "  # noqa: S608
                "WHERE deployment_id = ? AND position = ? AND status = ? AND ended_at IS NULL",
                [*values.values(), deployment_id, position, from_status.value],
            )
            return cur.rowcount == 1

        return await self._store.call(steer)

    async def promote_stage(self, deployment_id: str, *, position: int, by: str) -> bool:
        """Ask a running stage to end its bake now (once)."""

        def promote(db: sqlite_utils.Database) -> bool:
            cur = db.execute(
                "UPDATE rollout_stages SET promoted_by = ? WHERE deployment_id = ? "
                "AND position = ? AND ended_at IS NULL AND promoted_by IS NULL",
                [by, deployment_id, position],
            )
            return cur.rowcount == 1

        return await self._store.call(promote)

    async def running_for(self, environment: str, services: Iterable[str]) -> DeploymentId | None:
        """The id of an in-flight run in `environment` holding any of `services`, if one exists."""
        wanted = list(services)

        def query(db: sqlite_utils.Database) -> DeploymentId | None:
            return _holder(db, environment, wanted, exclude=None)

        return await self._store.call(query)


def _conflicting_run(db: sqlite_utils.Database, run: Deployment) -> DeploymentId | None:
    return _holder(db, run.environment, [t.service for t in run.active_targets], exclude=run.id)


def _holder(
    db: sqlite_utils.Database, environment: str, services: list[str], *, exclude: str | None
) -> DeploymentId | None:
    if not services:
        return None
    marks = ",".join("?" * len(services))
    states = ",".join("?" * len(_IN_FLIGHT))
    row = db.execute(
        f"SELECT d.id FROM deployments d JOIN deployment_targets t ON t.deployment_id = d.id "  # noqa: S608
        f"WHERE d.environment = ? AND d.state IN ({states}) AND t.service IN ({marks}) "
        f"AND t.status != ? AND d.id != ? LIMIT 1",
        [environment, *_IN_FLIGHT, *services, TargetStatus.SKIPPED.value, exclude or ""],
    ).fetchone()
    return DeploymentId(row[0]) if row else None


def _columns(fields: dict[str, Any]) -> dict[str, Any]:
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


def _row(run: Deployment) -> dict[str, Any]:
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
    }


def _target_row(deployment_id: str, position: int, t: Target) -> dict[str, Any]:
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


def _load(db: sqlite_utils.Database, deployment_id: str) -> Deployment | None:
    cur = db.execute("SELECT * FROM deployments WHERE id = ?", [deployment_id])
    row = cur.fetchone()
    if row is None:
        return None
    r = dict(zip([c[0] for c in cur.description], row, strict=True))
    targets = tuple(
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
    approvals = tuple(
        Approval(user_id=a[0], decision=Decision(a[1]), at=datetime.fromisoformat(a[2]))
        for a in db.execute(
            "SELECT user_id, decision, at FROM approvals WHERE deployment_id = ? "
            "ORDER BY at, rowid",
            [deployment_id],
        ).fetchall()
    )
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
        targets=targets,
        approvals=approvals,
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
    )


def _stages(db: sqlite_utils.Database, deployment_id: str) -> tuple[RolloutStage, ...]:
    rows = db.execute(
        "SELECT position, weight, bake_s, status, started_at, ended_at, elapsed_s, held_by, "
        "held_at, promoted_by, detail, figures FROM rollout_stages WHERE deployment_id = ? "
        "ORDER BY position",
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
            detail=r[10],
            figures={
                k: ServiceFigures.model_validate(v) for k, v in json.loads(r[11] or "{}").items()
            },
        )
        for r in rows
    )
