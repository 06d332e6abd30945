"""Canary stages: one `rollout_stages` row per weight a canary run reaches, with the bake time
it has used, the figures it saw last, and whether someone held or promoted it.

Starting, ending, steering and promoting a stage are compare-and-sets, so a resumed run or a
double click changes a stage once. A run's stages are read with the run (`Deployments.get`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlite_utils

from store.db import Store
from store.deploy.models import ServiceFigures, StageStatus
from store.deploy.rows import columns


class RolloutStages:
    """Repository of canary stages. Every method runs on the store thread."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def start(
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
        await self._store.call(
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

        def steer(db: sqlite_utils.Database) -> bool:
            sets = ", ".join(f"{k} = ?" for k in values)
            cur = db.execute(
                f"UPDATE rollout_stages SET {sets} "  # noqa: S608
                "WHERE deployment_id = ? AND position = ? AND status = ? AND ended_at IS NULL",
                [*values.values(), deployment_id, position, from_status.value],
            )
            return cur.rowcount == 1

        return await self._store.call(steer)

    async def promote(self, deployment_id: str, *, position: int, by: str) -> bool:
        """Ask a running stage to end its bake now (once)."""

        def promote(db: sqlite_utils.Database) -> bool:
            cur = db.execute(
                "UPDATE rollout_stages SET promoted_by = ? WHERE deployment_id = ? "
                "AND position = ? AND ended_at IS NULL AND promoted_by IS NULL",
                [by, deployment_id, position],
            )
            return cur.rowcount == 1

        return await self._store.call(promote)
