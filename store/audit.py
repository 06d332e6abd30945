"""The audit log: every command and click, who, what, when, and how it ended."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from store.database import Database
from store.db import Repository
from store.sql import all_rows
from store.values import FrozenModel


class AuditEntry(FrozenModel):
    """One command, click or form submission: who, what, how it ended, where, about what."""

    at: datetime
    actor: str
    action: str
    outcome: str
    channel_id: str | None = None
    detail: str | None = None


class AuditLog(Repository):
    async def record(self, entry: AuditEntry) -> None:
        """Write `entry`, group-committed with the other writes of the moment."""
        await self._store.write(lambda db: self.insert(db, entry))

    @staticmethod
    def insert(db: Database, entry: AuditEntry) -> None:
        """Write `entry` on the store thread, inside the caller's transaction if there is one."""
        # Plain SQL: sqlite-utils' Table.insert looks the table and its columns up each time.
        db.execute(
            "INSERT INTO audit_log (at, actor, action, outcome, channel_id, detail) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                entry.at.isoformat(),
                entry.actor,
                entry.action,
                entry.outcome,
                entry.channel_id,
                entry.detail,
            ],
        )

    async def recent(self, *, limit: int = 50) -> list[AuditEntry]:
        sql = (
            "SELECT at, actor, action, outcome, channel_id, detail FROM audit_log "
            "ORDER BY id DESC LIMIT ?"
        )
        return await self._store.call(all_rows(sql, [limit], _entry))


def _entry(r: tuple[Any, ...]) -> AuditEntry:
    return AuditEntry(
        at=datetime.fromisoformat(r[0]),
        actor=r[1],
        action=r[2],
        outcome=r[3],
        channel_id=r[4],
        detail=r[5],
    )
