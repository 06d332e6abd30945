"""Environment locks: who holds one, why, since and until when. One lock per environment.

Taking a lock is a compare-and-set: it succeeds only when no lock is held (or the held one has
expired). The store keeps raw user IDs.
"""

from __future__ import annotations

from datetime import datetime

from store.database import Database
from store.db import Repository
from store.sql import changes_one
from store.values import FrozenModel


class Lock(FrozenModel):
    environment: str
    holder: str
    reason: str | None
    since: datetime
    until: datetime | None

    def active(self, now: datetime) -> bool:
        return self.until is None or now < self.until


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _load(db: Database, environment: str) -> Lock | None:
    row = db.execute(
        "SELECT environment, holder, reason, since, until FROM locks WHERE environment = ?",
        [environment],
    ).fetchone()
    if row is None:
        return None
    since = _dt(row[3])
    assert since is not None
    return Lock(environment=row[0], holder=row[1], reason=row[2], since=since, until=_dt(row[4]))


class Locks(Repository):
    async def get(self, environment: str) -> Lock | None:
        """The lock on `environment`, held or expired (None when there is none)."""
        return await self._store.call(lambda db: _load(db, environment))

    async def all(self) -> list[Lock]:
        def query(db: Database) -> list[Lock]:
            names = [r[0] for r in db.execute("SELECT environment FROM locks").fetchall()]
            return [lock for n in names if (lock := _load(db, n)) is not None]

        return await self._store.call(query)

    async def take(
        self,
        environment: str,
        *,
        holder: str,
        reason: str | None,
        at: datetime,
        until: datetime | None,
    ) -> Lock | None:
        """Take the lock. Returns the lock that stands in the way when another is held."""

        def take(db: Database) -> Lock | None:
            with db.atomic():
                current = _load(db, environment)
                if current is not None and current.active(at):
                    return current
                db.execute(
                    "INSERT INTO locks (environment, holder, reason, since, until) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (environment) DO UPDATE SET "
                    "holder = excluded.holder, reason = excluded.reason, "
                    "since = excluded.since, until = excluded.until",
                    [
                        environment,
                        holder,
                        reason,
                        at.isoformat(),
                        until.isoformat() if until else None,
                    ],
                )
                return None

        return await self._store.call(take)

    async def release(self, environment: str, *, since: datetime) -> bool:
        """Remove the lock taken at `since` (so a newer lock is never removed by mistake)."""

        return await self._store.call(
            changes_one(
                "DELETE FROM locks WHERE environment = ? AND since = ?",
                [environment, since.isoformat()],
            )
        )
