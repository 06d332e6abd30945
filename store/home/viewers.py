"""The people who opened the App Home, kept so a restart still publishes to them, with a digest
of the view Slack last accepted for each (a view that would look the same is not sent again)."""

from __future__ import annotations

from datetime import datetime

from store.database import Database
from store.db import Repository
from store.values import FrozenModel


class HomeViewer(FrozenModel):
    user_id: str
    opened_at: datetime
    digest: str | None = None
    """What their Home tab shows, as a digest; None until a view was published to them."""
    published_at: datetime | None = None


_COLUMNS = ("user_id", "opened_at", "digest", "published_at")


def _select(db: Database, rest: str, args: list[str]) -> list[HomeViewer]:
    """The viewers `rest` (this module's own WHERE or ORDER BY clause) picks."""
    sql = f"SELECT {', '.join(_COLUMNS)} FROM home_viewers {rest}"  # noqa: S608 - no input
    return [
        HomeViewer.model_validate(dict(zip(_COLUMNS, row, strict=True)))
        for row in db.execute(sql, args).fetchall()
    ]


class HomeViewers(Repository):
    """One row per person who opened the Home tab. Every method runs on the store thread."""

    async def opened(self, user_id: str, *, at: datetime) -> None:
        """`user_id` opened the Home tab (again): they get its updates from now on."""
        await self._store.write(
            lambda db: db.execute(
                "INSERT INTO home_viewers (user_id, opened_at) VALUES (?, ?) "
                "ON CONFLICT(user_id) DO UPDATE SET opened_at = excluded.opened_at",
                [user_id, at.isoformat()],
            )
        )

    async def all(self) -> list[HomeViewer]:
        """Everyone who opened the Home tab, first opened first."""
        return await self._store.call(lambda db: _select(db, "ORDER BY opened_at, user_id", []))

    async def get(self, user_id: str) -> HomeViewer | None:
        found = await self._store.call(lambda db: _select(db, "WHERE user_id = ?", [user_id]))
        return found[0] if found else None

    async def published(self, user_id: str, *, digest: str, at: datetime) -> None:
        """Slack accepted a view whose digest is `digest` for `user_id`'s Home tab."""
        await self._store.write(
            lambda db: db.execute(
                "UPDATE home_viewers SET digest = ?, published_at = ? WHERE user_id = ?",
                [digest, at.isoformat(), user_id],
            )
        )

    async def forget(self, user_id: str) -> None:
        """Slack no longer knows `user_id` (deactivated): stop publishing to them."""
        await self._store.write(
            lambda db: db.execute("DELETE FROM home_viewers WHERE user_id = ?", [user_id])
        )
