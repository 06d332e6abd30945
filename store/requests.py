"""What the store keeps of the requests the bot receives.

`SeenRequests`: the signature (or Socket Mode envelope id) of every request handled in the
last minutes, so a replay inside Slack's five-minute window is acknowledged, not acted on again.
`OpenRequests`: each request acknowledged and not yet finished, so one cut short by a crash is
found at start-up (its audit row written, its sender told).
"""

from __future__ import annotations

import heapq
from datetime import datetime
from typing import Any

from store.audit import AuditEntry, AuditLog
from store.database import Database
from store.db import Repository, Store
from store.sql import all_rows
from store.values import FrozenModel


class SeenRequests(Repository):
    """Request keys with an expiry, answered from memory and kept in `seen_requests`.

    The keys of the table are read once, at the first question; after that a key seen here is
    refused from memory, and a new one is inserted in the table (group-committed with the
    writes of the moment): the table decides, so a request that reached two replicas (a
    retry through another connection, a replay) is acted on by one only. The key is committed
    before anything the request itself writes.
    """

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._expiry: dict[str, str] | None = None
        self._by_expiry: list[tuple[str, str]] = []

    async def first_sight(self, key: str, *, expires_at: datetime, now: datetime) -> bool:
        """Remember `key` until `expires_at`; False when it was already remembered.

        Keys whose expiry has passed by `now` are forgotten first (in memory at once, in the
        table with the key's write).
        """
        if self._expiry is None:
            loaded = await self._store.call(_load_seen)
            if self._expiry is None:  # not loaded by a request that was waiting too
                self._expiry = loaded
                self._by_expiry = [(at, k) for k, at in loaded.items()]
                heapq.heapify(self._by_expiry)
        cutoff, until = now.isoformat(), expires_at.isoformat()
        forgot = self._forget_before(cutoff)
        if key in self._expiry:
            return False
        # Remembered here at once (a second copy arriving meanwhile is a replay); the table
        # decides, as another replica may have taken the same request.
        self._expiry[key] = until
        heapq.heappush(self._by_expiry, (until, key))

        def remember(db: Database) -> bool:
            if forgot:
                db.execute("DELETE FROM seen_requests WHERE expires_at < ?", [cutoff])
            return bool(
                db.execute(
                    "INSERT INTO seen_requests (key, expires_at) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at "
                    "WHERE seen_requests.expires_at < ?",
                    [key, until, cutoff],
                ).rowcount
                == 1
            )

        return await self._store.write(remember)

    def _forget_before(self, cutoff: str) -> bool:
        if self._expiry is None:
            raise RuntimeError("The seen keys are not loaded yet; call first_sight().")
        forgot = False
        while self._by_expiry and self._by_expiry[0][0] < cutoff:
            _, key = heapq.heappop(self._by_expiry)
            self._expiry.pop(key, None)
            forgot = True
        return forgot

    async def count(self) -> int:
        """How many keys are remembered (for tests and operators)."""
        return await self._store.call(
            lambda db: int(db.execute("SELECT COUNT(*) FROM seen_requests").fetchone()[0])
        )


def _load_seen(db: Database) -> dict[str, str]:
    return dict(db.execute("SELECT key, expires_at FROM seen_requests").fetchall())


class OpenRequest(FrozenModel):
    """A request acknowledged and not yet finished: who, what, where, about which record."""

    id: int
    received_at: datetime
    actor: str
    action: str
    channel_id: str | None
    ref: str | None


class OpenRequests(Repository):
    """The journal of requests in progress, each marked with the replica that took it. Every
    method runs on the store thread."""

    def __init__(self, store: Store, *, replica: str | None = None) -> None:
        super().__init__(store)
        self._replica = replica

    async def open(
        self,
        *,
        at: datetime,
        actor: str,
        action: str,
        channel_id: str | None,
        ref: str | None,
    ) -> int:
        """Record a request about to be acknowledged (committed on return, group-committed with
        the writes of the moment, such as its replay key); returns its journal id."""

        def insert(db: Database) -> int:
            [(journal_id,)] = db.execute(
                "INSERT INTO open_requests (received_at, actor, action, channel_id, ref, replica) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                [at.isoformat(), actor, action, channel_id, ref, self._replica],
            ).fetchall()
            return int(journal_id)

        return await self._store.write(insert)

    async def finish(self, journal_id: int, entry: AuditEntry) -> bool:
        """The request ended: write its audit row and close it, in one transaction, so a crash
        leaves it either open or audited, never both or neither. False (nothing written) when
        it was closed already, by another replica that finished it after this one's death."""

        def finish(db: Database) -> bool:
            if db.execute("DELETE FROM open_requests WHERE id = ?", [journal_id]).rowcount != 1:
                return False
            AuditLog.insert(db, entry)
            return True

        return await self._store.write(finish)

    async def left_open(self, *, replicas: list[str] | None = None) -> list[OpenRequest]:
        """Every request still open, oldest first: at start-up, those a crash cut short. With
        `replicas`, only those these replicas took (and those of the days before replicas)."""
        sql = "SELECT id, received_at, actor, action, channel_id, ref FROM open_requests"
        args: list[str] = []
        if replicas is not None:
            marks = ",".join("?" * len(replicas))
            sql += f" WHERE replica IS NULL OR replica IN ({marks})" if replicas else ""
            args = list(replicas)
        return await self._store.call(all_rows(sql + " ORDER BY id", args, _open_request))

    async def takers(self, ref: str) -> list[str]:
        """The replicas with a request about `ref` open."""
        return await self._store.call(
            lambda db: [
                r[0]
                for r in db.execute(
                    "SELECT replica FROM open_requests WHERE ref = ? AND replica IS NOT NULL",
                    [ref],
                ).fetchall()
            ]
        )

    async def replicas_with_open(self) -> list[str]:
        """The replicas that have requests open."""
        return await self._store.call(
            lambda db: [
                r[0]
                for r in db.execute(
                    "SELECT DISTINCT replica FROM open_requests WHERE replica IS NOT NULL"
                ).fetchall()
            ]
        )


def _open_request(r: tuple[Any, ...]) -> OpenRequest:
    return OpenRequest(
        id=r[0],
        received_at=datetime.fromisoformat(r[1]),
        actor=r[2],
        action=r[3],
        channel_id=r[4],
        ref=r[5],
    )
