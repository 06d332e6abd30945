"""Canary stages: one `rollout_stages` row per weight a canary run reaches, with the bake time
it has used, the figures it saw last, and whether someone held or promoted it.

Starting, ending, steering, promoting and aborting a stage are compare-and-sets, so a resumed
run or a double click changes a stage once; steering and promoting need the run still running,
so nothing is changed once an Abort was taken. A run's stages are read with the run
(`Deployments.get`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from store.database import Database
from store.db import Repository
from store.deploy.models import DeploymentState, ServiceFigures, StageStatus
from store.deploy.rows import columns
from store.leases import fenced
from store.sql import changes_one

T = TypeVar("T")

# A steer or a promote applies only while the stage's run is running: an Abort moves the run
# to rolling back first, in the same transaction as it marks the stage.
_RUN_IS = (
    "EXISTS (SELECT 1 FROM deployments d WHERE d.id = rollout_stages.deployment_id AND d.state = ?)"
)


class RolloutStages(Repository):
    """Repository of canary stages. Every method runs on the store thread."""

    async def _write(self, fn: Callable[[Database], T]) -> T:
        """A write of the run's own steps is fenced by its lease (`store.leases`)."""
        return await self._store.call(fenced(fn))

    async def start(
        self, deployment_id: str, *, position: int, weight: int, bake_s: float, at: datetime
    ) -> bool:
        """Record the start of a canary stage, once. False when it had started already."""

        return await self._write(
            changes_one(
                "INSERT INTO rollout_stages (deployment_id, position, weight, bake_s, "
                "status, started_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [deployment_id, position, weight, bake_s, StageStatus.BAKING.value, at.isoformat()],
            )
        )

    async def progress(
        self,
        deployment_id: str,
        *,
        position: int,
        elapsed_s: float,
        figures: Mapping[str, ServiceFigures],
    ) -> None:
        """Keep how much bake time a stage has used and the figures it saw last."""
        data = json.dumps({k: v.model_dump(mode="json") for k, v in figures.items()})
        await self._write(
            lambda db: db.execute(
                "UPDATE rollout_stages SET elapsed_s = ?, figures = ? "
                "WHERE deployment_id = ? AND position = ?",
                [elapsed_s, data, deployment_id, position],
            )
        )

    async def end(
        self,
        deployment_id: str,
        *,
        position: int,
        status: StageStatus,
        at: datetime,
        detail: str | None = None,
    ) -> bool:
        """End a baking or held stage, once."""

        return await self._write(
            changes_one(
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
        )

    async def steer(
        self,
        deployment_id: str,
        *,
        position: int,
        from_status: StageStatus,
        to_status: StageStatus,
        **fields: Any,
    ) -> bool:
        """Compare-and-set a running stage's status (hold, resume), with extra columns."""
        values = {"status": to_status.value, **columns(fields)}

        sets = ", ".join(f"{k} = ?" for k in values)
        return await self._write(
            changes_one(
                f"UPDATE rollout_stages SET {sets} "  # noqa: S608
                "WHERE deployment_id = ? AND position = ? AND status = ? AND ended_at IS NULL "
                f"AND {_RUN_IS}",
                [
                    *values.values(),
                    deployment_id,
                    position,
                    from_status.value,
                    DeploymentState.RUNNING.value,
                ],
            )
        )

    async def promote(self, deployment_id: str, *, position: int, by: str) -> bool:
        """Ask a running stage to end its bake now (once)."""

        return await self._write(
            changes_one(
                "UPDATE rollout_stages SET promoted_by = ? WHERE deployment_id = ? "  # noqa: S608
                "AND position = ? AND ended_at IS NULL AND promoted_by IS NULL "
                f"AND {_RUN_IS}",
                [by, deployment_id, position, DeploymentState.RUNNING.value],
            )
        )

    async def abort(
        self,
        deployment_id: str,
        *,
        position: int,
        by: str,
        at: datetime,
        error: str,
        error_line: str | None = None,
    ) -> bool:
        """Abort a running canary at stage `position`, once: in one transaction the run goes
        from running to rolling back (with `error`), and the stage records `by` and, if it was
        baking or held, ends as aborted. False (changing nothing) when the run was not running.
        """

        def abort(db: Database) -> bool:
            with db.atomic():
                cur = db.execute(
                    "UPDATE deployments SET state = ?, updated_at = ?, stage = ?, error = ?, "
                    "error_line = ? WHERE id = ? AND state = ?",
                    [
                        DeploymentState.ROLLING_BACK.value,
                        at.isoformat(),
                        "rollback",
                        error,
                        error_line,
                        deployment_id,
                        DeploymentState.RUNNING.value,
                    ],
                )
                if cur.rowcount != 1:
                    return False
                db.execute(
                    "UPDATE rollout_stages SET aborted_by = ? WHERE deployment_id = ? "
                    "AND position = ?",
                    [by, deployment_id, position],
                )
                db.execute(
                    "UPDATE rollout_stages SET status = ?, ended_at = ? WHERE deployment_id = ? "
                    "AND position = ? AND status IN (?, ?)",
                    [
                        StageStatus.ABORTED.value,
                        at.isoformat(),
                        deployment_id,
                        position,
                        StageStatus.BAKING.value,
                        StageStatus.HELD.value,
                    ],
                )
                return True

        return await self._write(abort)
