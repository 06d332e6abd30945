"""Claims of timed work: each firing (a timer's key and its due time) is done by one replica.

`claim` inserts `(key, due_at)` with `ON CONFLICT DO NOTHING`: the replica whose row went in
does the work. A claim lapses after its ttl unless marked done, so a replica that died while
doing the work leaves it to another (or to itself, restarted: a claim of its own id is taken
back at once). A failed attempt releases its claim for the next try.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from store.database import Database
from store.db import Repository
from store.leases import RELEASED, stamp


class TimerClaims(Repository):
    """The `timer_claims` table. Every method runs on the store thread."""

    async def claim(
        self, key: str, *, due: datetime | str, owner: str, now: datetime, ttl_s: float
    ) -> bool:
        """Take the firing of `key` due at `due`; False when another replica has it (or it
        was done)."""
        due_at = due if isinstance(due, str) else stamp(due)
        until = stamp(now + timedelta(seconds=ttl_s))

        def take(db: Database) -> bool:
            if (
                db.execute(
                    "INSERT INTO timer_claims (key, due_at, owner, expires_at, done, claimed_at) "
                    "VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT (key, due_at) DO NOTHING",
                    [key, due_at, owner, until, stamp(now)],
                ).rowcount
                == 1
            ):
                return True
            return bool(
                db.execute(
                    "UPDATE timer_claims SET owner = ?, expires_at = ?, claimed_at = ? "
                    "WHERE key = ? AND due_at = ? AND done = 0 AND (expires_at < ? OR owner = ?)",
                    [owner, until, stamp(now), key, due_at, stamp(now), owner],
                ).rowcount
                == 1
            )

        return await self._store.call(take)

    async def finish(self, key: str, *, due: datetime | str, owner: str) -> None:
        due_at = due if isinstance(due, str) else stamp(due)
        await self._store.call(
            lambda db: db.execute(
                "UPDATE timer_claims SET done = 1 WHERE key = ? AND due_at = ? AND owner = ?",
                [key, due_at, owner],
            )
        )

    async def release(self, key: str, *, due: datetime | str, owner: str) -> None:
        due_at = due if isinstance(due, str) else stamp(due)
        await self._store.call(
            lambda db: db.execute(
                "UPDATE timer_claims SET expires_at = ? "
                "WHERE key = ? AND due_at = ? AND owner = ? AND done = 0",
                [RELEASED, key, due_at, owner],
            )
        )
