"""What the store keeps of the requests the bot receives.

`SeenRequests`: the signature (or Socket Mode envelope id) of every request handled in the
last minutes, so a replay inside Slack's five-minute window is acknowledged, not acted on again.
`OpenRequests`: each request acknowledged and not yet finished, so one cut short by a crash is
found at start-up (its audit row written, its sender told).
"""

from __future__ import annotations

from datetime import datetime

import sqlite_utils

from store.audit import AuditEntry, AuditLog
from store.db import Store
from store.values import FrozenModel


class SeenRequests:
    """Request keys with an expiry. Every method runs on the store thread."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def first_sight(self, key: str, *, expires_at: datetime, now: datetime) -> bool:
        """Remember `key` until `expires_at`; False when it was already remembered.

        Keys whose expiry has passed by `now` are forgotten first, in the same transaction.
        """

        def remember(db: sqlite_utils.Database) -> bool:
            with db.atomic():
                db.execute("DELETE FROM seen_requests WHERE expires_at < ?", [now.isoformat()])
                cur = db.execute(
                    "INSERT OR IGNORE INTO seen_requests (key, expires_at) VALUES (?, ?)",
                    [key, expires_at.isoformat()],
                )
                return cur.rowcount == 1

        return await self._store.call(remember)

    async def count(self) -> int:
        """How many keys are remembered (for tests and operators)."""
        return await self._store.call(
            lambda db: int(db.execute("SELECT COUNT(*) FROM seen_requests").fetchone()[0])
        )


class OpenRequest(FrozenModel):
    """A request acknowledged and not yet finished: who, what, where, about which record."""

    id: int
    received_at: datetime
    actor: str
    action: str
    channel_id: str | None
    ref: str | None


class OpenRequests:
    """The journal of requests in progress. Every method runs on the store thread."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def open(
        self,
        *,
        at: datetime,
        actor: str,
        action: str,
        channel_id: str | None,
        ref: str | None,
    ) -> int:
        """Record a request about to be acknowledged; returns its journal id."""

        def insert(db: sqlite_utils.Database) -> int:
            cur = db.execute(
                "INSERT INTO open_requests (received_at, actor, action, channel_id, ref) "
                "VALUES (?, ?, ?, ?, ?)",
                [at.isoformat(), actor, action, channel_id, ref],
            )
            return int(cur.lastrowid or 0)

        return await self._store.call(insert)

    async def finish(self, journal_id: int, entry: AuditEntry) -> None:
        """The request ended: write its audit row and close it, in one transaction, so a crash
        leaves it either open or audited, never both or neither."""

        def finish(db: sqlite_utils.Database) -> None:
            with db.atomic():
                AuditLog.insert(db, entry)
                db.execute("DELETE FROM open_requests WHERE id = ?", [journal_id])

        await self._store.call(finish)

    async def left_open(self) -> list[OpenRequest]:
        """Every request still open, oldest first: at start-up, those a crash cut short."""

        def query(db: sqlite_utils.Database) -> list[OpenRequest]:
            rows = db.execute(
                "SELECT id, received_at, actor, action, channel_id, ref FROM open_requests "
                "ORDER BY id"
            ).fetchall()
            return [
                OpenRequest(
                    id=r[0],
                    received_at=datetime.fromisoformat(r[1]),
                    actor=r[2],
                    action=r[3],
                    channel_id=r[4],
                    ref=r[5],
                )
                for r in rows
            ]

        return await self._store.call(query)
