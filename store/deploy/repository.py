"""Deployment records: create, read, compare-and-set transitions, approvals, the stage timeline.

How a run lies in its tables is `store.deploy.rows`; its canary stages change through
`store.deploy.stages`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from store.database import Database
from store.db import Repository
from store.deploy.models import (
    Decision,
    Deployment,
    DeploymentId,
    DeploymentState,
    RunKind,
    StageEvent,
    TargetStatus,
)
from store.deploy.rows import columns, deployment_row, load_deployment, target_row
from store.leases import fenced
from store.sql import all_rows, changes_one

_IN_FLIGHT = tuple(s.value for s in DeploymentState if s.in_flight)


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


class Deployments(Repository):
    """Repository of deployments. Every method runs on the store thread."""

    async def create(self, run: Deployment) -> None:
        def insert(db: Database) -> None:
            with db.atomic():
                db.table("deployments").insert(deployment_row(run))
                db.table("deployment_targets").insert_all(
                    target_row(run.id, i, t) for i, t in enumerate(run.targets)
                )

        await self._store.call(insert)

    async def get(self, deployment_id: str) -> Deployment | None:
        return await self._store.call(lambda db: load_deployment(db, deployment_id))

    async def get_many(self, deployment_ids: Iterable[str]) -> dict[str, Deployment]:
        """The recorded runs among `deployment_ids`, by id, read in one trip to the store."""
        wanted = list(dict.fromkeys(deployment_ids))

        def query(db: Database) -> dict[str, Deployment]:
            return {i: d for i in wanted if (d := load_deployment(db, i)) is not None}

        return await self._store.call(query) if wanted else {}

    async def list_recent(
        self, *, environment: str | None = None, limit: int = 10
    ) -> list[Deployment]:
        """The newest `limit` runs (of `environment`, when given), newest first. Reads them
        from the newest end of an index and stops there (migration 13)."""

        where, args = ("WHERE environment = ?", [environment]) if environment else ("", [])
        sql = f"SELECT id FROM deployments {where} ORDER BY created_at DESC, id DESC LIMIT ?"  # noqa: S608
        return await self._store.call(_runs(sql, [*args, limit]))

    async def in_states(self, states: Iterable[DeploymentState]) -> list[Deployment]:
        wanted = [s.value for s in states]

        marks = ",".join("?" * len(wanted))
        sql = f"SELECT id FROM deployments WHERE state IN ({marks}) ORDER BY created_at"  # noqa: S608
        return await self._store.call(_runs(sql, wanted))

    async def finished_since(self, *, environment: str, since: datetime) -> list[Deployment]:
        """Runs in `environment` that finished at or after `since`, newest first."""

        sql = (
            "SELECT id FROM deployments WHERE environment = ? AND finished_at >= ? "
            "ORDER BY finished_at DESC"
        )
        return await self._store.call(_runs(sql, [environment, since.isoformat()]))

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
        values = {"state": to.value, "updated_at": at.isoformat(), **columns(fields)}

        sets = ", ".join(f"{k} = ?" for k in values)
        marks = ",".join("?" * len(from_states))
        return await self._store.call(
            fenced(
                changes_one(
                    f"UPDATE deployments SET {sets} WHERE id = ? AND state IN ({marks})",  # noqa: S608
                    [*values.values(), deployment_id, *(s.value for s in from_states)],
                )
            )
        )

    async def set_fields(self, deployment_id: str, *, at: datetime, **fields: Any) -> None:
        """Update non-state columns (stage, message_ts, error)."""
        values = {"updated_at": at.isoformat(), **columns(fields)}
        await self._store.call(
            fenced(lambda db: db.table("deployments").update(deployment_id, values))
        )

    async def update_target(self, deployment_id: str, service: str, **fields: Any) -> None:
        values = columns(fields)

        def update(db: Database) -> None:
            sets = ", ".join(f"{k} = ?" for k in values)
            db.execute(
                f"UPDATE deployment_targets SET {sets} WHERE deployment_id = ? AND service = ?",  # noqa: S608
                [*values.values(), deployment_id, service],
            )

        await self._store.call(fenced(update))

    async def record_event(self, event: StageEvent) -> None:
        await self._store.call(
            fenced(
                lambda db: db.table("deployment_events").insert(
                    {
                        "deployment_id": event.deployment_id,
                        "at": event.at.isoformat(),
                        "stage": event.stage,
                        "service": event.service,
                        "status": event.status,
                        "detail": event.detail,
                        "detail_line": event.detail_line,
                    }
                )
            )
        )

    async def events(self, deployment_id: str) -> list[StageEvent]:
        sql = (
            "SELECT deployment_id, at, stage, service, status, detail, detail_line "
            "FROM deployment_events WHERE deployment_id = ? ORDER BY id"
        )
        return await self._store.call(all_rows(sql, [deployment_id], _stage_event))

    async def record_decision(
        self, deployment_id: str, *, user_id: str, decision: Decision, at: datetime
    ) -> DecisionResult:
        """Record one approver's click, once, and move the run on when it settles it.

        In one transaction: the click is ignored unless the run awaits approval and this user has
        not decided yet; a reject ends the run; the Nth distinct approval moves it to APPROVED
        unless another in-flight run in the same environment holds one of its services.
        """

        def decide(db: Database) -> DecisionResult:
            with db.atomic():
                run = load_deployment(db, deployment_id)
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
                after = load_deployment(db, deployment_id)
                assert after is not None
                return DecisionResult(True, new_state is DeploymentState.APPROVED, None, after)

        return await self._store.call(decide)

    async def start_unapproved(self, deployment_id: str, *, at: datetime) -> DeploymentId | None:
        """Move a run needing no approvals to APPROVED. Returns a conflicting run's id instead."""

        def start(db: Database) -> DeploymentId | None:
            with db.atomic():
                run = load_deployment(db, deployment_id)
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

        where = "environment = ? AND state = ?"
        args: list[Any] = [environment, DeploymentState.SUCCEEDED.value]
        if kind is not None:
            where += " AND kind = ?"
            args.append(kind.value)
        sql = (
            f"SELECT id FROM deployments WHERE {where} "  # noqa: S608
            "ORDER BY finished_at DESC, created_at DESC, id DESC LIMIT ?"
        )
        return await self._store.call(_runs(sql, [*args, limit]))

    async def rollbacks_in(self, channel_id: str, *, since: datetime) -> list[Deployment]:
        """Rollback runs asked for in `channel_id` (a war room) since `since`, oldest first."""

        sql = (
            "SELECT id FROM deployments WHERE kind = ? AND channel_id = ? AND created_at >= ? "
            "ORDER BY created_at"
        )
        return await self._store.call(
            _runs(sql, [RunKind.ROLLBACK.value, channel_id, since.isoformat()])
        )

    async def open_windows(self) -> list[Deployment]:
        """Succeeded deploys whose rollback window has not closed, oldest deadline first."""

        sql = (
            "SELECT id FROM deployments WHERE state = ? AND rollback_deadline IS NOT NULL "
            "AND window_closed_at IS NULL ORDER BY rollback_deadline"
        )
        return await self._store.call(_runs(sql, [DeploymentState.SUCCEEDED.value]))

    async def close_window(self, deployment_id: str, *, at: datetime) -> bool:
        """Close a deploy's rollback window (once). False when it was closed already."""

        return await self._store.call(
            fenced(
                changes_one(
                    "UPDATE deployments SET window_closed_at = ?, updated_at = ? "
                    "WHERE id = ? AND window_closed_at IS NULL AND rollback_deadline IS NOT NULL",
                    [at.isoformat(), at.isoformat(), deployment_id],
                )
            )
        )

    async def mark_reverted(
        self, deployment_id: str, *, services: Iterable[str], by: str, at: datetime
    ) -> Deployment | None:
        """Record that rollback `by` took `services` of a deploy back. The rollback window is
        per service: the others stay inside it, and only when every service is back is the
        deploy itself marked reverted and its window closed."""
        names = list(services)

        def mark(db: Database) -> Deployment | None:
            with db.atomic():
                marks = ",".join("?" * len(names))
                db.execute(
                    f"UPDATE deployment_targets SET reverted_by = ? "  # noqa: S608
                    f"WHERE deployment_id = ? AND service IN ({marks}) AND reverted_by IS NULL",
                    [by, deployment_id, *names],
                )
                run = load_deployment(db, deployment_id)
                if run is None:
                    return None
                fields: dict[str, Any] = {"updated_at": at.isoformat()}
                if all(t.reverted_by for t in run.active_targets):
                    fields["reverted_by"] = by
                    if run.window_closed_at is None and run.rollback_deadline is not None:
                        fields["window_closed_at"] = at.isoformat()
                db.table("deployments").update(deployment_id, fields)
                return load_deployment(db, deployment_id)

        return await self._store.call(fenced(mark))

    async def running_for(self, environment: str, services: Iterable[str]) -> DeploymentId | None:
        """The id of an in-flight run in `environment` holding any of `services`, if one exists."""
        wanted = list(services)

        def query(db: Database) -> DeploymentId | None:
            return _holder(db, environment, wanted, exclude=None)

        return await self._store.call(query)


def _conflicting_run(db: Database, run: Deployment) -> DeploymentId | None:
    return _holder(db, run.environment, [t.service for t in run.active_targets], exclude=run.id)


def _holder(
    db: Database, environment: str, services: list[str], *, exclude: str | None
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


def _runs(sql: str, params: Sequence[Any]) -> Callable[[Database], list[Deployment]]:
    """A read of whole runs: those whose ids `sql` selects, in its order."""

    def run(db: Database) -> list[Deployment]:
        ids = db.execute(sql, list(params)).fetchall()
        return [d for (i,) in ids if (d := load_deployment(db, i)) is not None]

    return run


def _stage_event(r: tuple[Any, ...]) -> StageEvent:
    return StageEvent(
        deployment_id=DeploymentId(r[0]),
        at=datetime.fromisoformat(r[1]),
        stage=r[2],
        service=r[3],
        status=r[4],
        detail=r[5],
        detail_line=r[6],
    )
