"""What each deploy card last showed in Slack, so every card can be brought back in step.

A card's record is a digest of the text and blocks Slack accepted and the run's `updated_at`
they were drawn from; a card whose digest differs from its run's drawing now is behind.
"""

from __future__ import annotations

from datetime import datetime

from store.database import Database
from store.db import Repository
from store.values import FrozenModel


class ShownCard(FrozenModel):
    deployment_id: str
    digest: str
    drawn_version: datetime
    shown_at: datetime


class CardViews(Repository):
    """One row per deploy card. Every method runs on the store thread."""

    async def shown(self, deployment_id: str) -> ShownCard | None:
        def query(db: Database) -> ShownCard | None:
            row = db.execute(
                "SELECT deployment_id, digest, drawn_version, shown_at FROM deployment_cards "
                "WHERE deployment_id = ?",
                [deployment_id],
            ).fetchone()
            if row is None:
                return None
            return ShownCard(
                deployment_id=row[0],
                digest=row[1],
                drawn_version=datetime.fromisoformat(row[2]),
                shown_at=datetime.fromisoformat(row[3]),
            )

        return await self._store.call(query)

    async def record(
        self, deployment_id: str, *, digest: str, drawn_version: datetime, at: datetime
    ) -> None:
        """Slack accepted the card of `deployment_id` as drawn from its `drawn_version`."""
        await self._store.call(
            lambda db: db.execute(
                "INSERT INTO deployment_cards (deployment_id, digest, drawn_version, shown_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(deployment_id) DO UPDATE SET "
                "digest = excluded.digest, drawn_version = excluded.drawn_version, "
                "shown_at = excluded.shown_at",
                [deployment_id, digest, drawn_version.isoformat(), at.isoformat()],
            )
        )

    async def to_check(self, *, finished_since: datetime) -> list[str]:
        """Ids of runs that have a card and are unfinished or finished at or after
        `finished_since`, oldest first: the cards worth comparing with their runs."""

        def query(db: Database) -> list[str]:
            rows = db.execute(
                "SELECT id FROM deployments WHERE message_ts IS NOT NULL "
                "AND (finished_at IS NULL OR finished_at >= ?) ORDER BY created_at",
                [finished_since.isoformat()],
            ).fetchall()
            return [str(r[0]) for r in rows]

        return await self._store.call(query)
