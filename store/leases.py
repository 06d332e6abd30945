"""Leases: which replica owns a run (or is alive) until when, and the fence on a run's writes.

A lease is a row `(name, owner, generation, expires_at)`. Taking it over bumps the generation
with a compare-and-set, so exactly one replica holds each generation. While a run executes, the
generation it holds is in the `FENCE` context variable; every recorded write of the run goes
through `fenced`, which first updates the lease row with its generation in the same
transaction (renewing it on the way): a replica that lost the lease has its write refused
(`LeaseLost`), and a write that passes is committed before any takeover (the takeover's
UPDATE waits for the row).

Times are ISO text in UTC with microseconds, so they compare as text on every backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from store.database import Database
from store.db import Repository, StoreError

T = TypeVar("T")

# An expiry that every time is later than: a released lease is free at once.
RELEASED = ""


def stamp(at: datetime) -> str:
    """A time as leases and claims keep it: ISO, UTC, always with microseconds."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def run_lease(deployment_id: str) -> str:
    return f"run:{deployment_id}"


def deployment_of(lease: str) -> str | None:
    """The run a `run_lease` name is of; None for another lease (a replica's presence)."""
    return lease.removeprefix("run:") if lease.startswith("run:") else None


def presence_lease(replica_id: str) -> str:
    return f"replica:{replica_id}"


class LeaseLost(StoreError):
    """This replica no longer holds the lease it acts under: it must stop acting for it."""


@dataclass(frozen=True)
class Fence:
    """The lease a task acts under: its name, the generation it holds, whether this replica
    still trusts it locally (its own deadline, before any other could take over), and
    `extend`: the expiry a write renews it to, with what to call once that is committed."""

    name: str
    generation: int
    valid: Callable[[], bool]
    extend: Callable[[], tuple[str, Callable[[], None]]]
    lost: Callable[[], None]
    """Called (on the store thread) when a write found the lease moved on."""


FENCE: ContextVar[Fence | None] = ContextVar("chatops_fence", default=None)


def check_fence(db: Database) -> Callable[[], None]:
    """Raise LeaseLost unless the current task's lease (if any) is still this generation's;
    returns what to call once the transaction committed (the lease was renewed). Call inside
    the write's transaction: the UPDATE holds the lease row until it commits."""
    fence = FENCE.get()
    if fence is None:
        return lambda: None
    if not fence.valid():
        raise LeaseLost(f"the lease {fence.name} ran out here; not writing")
    until, renewed = fence.extend()
    touched = db.execute(
        "UPDATE leases SET expires_at = ? WHERE name = ? AND generation = ?",
        [until, fence.name, fence.generation],
    ).rowcount
    if touched != 1:
        fence.lost()
        raise LeaseLost(f"the lease {fence.name} moved on from generation {fence.generation}")
    return renewed


def fenced(fn: Callable[[Database], T]) -> Callable[[Database], T]:
    """`fn`, a write, made to run only while the current task's lease holds (see module)."""

    def run(db: Database) -> T:
        if FENCE.get() is None:
            return fn(db)
        with db.atomic():
            renewed = check_fence(db)
            result = fn(db)
        renewed()
        return result

    return run


@dataclass(frozen=True)
class Holder:
    owner: str
    generation: int
    expires_at: str


class Leases(Repository):
    """The `leases` table. Every method runs on the store thread."""

    async def acquire(self, name: str, *, owner: str, now: datetime, ttl_s: float) -> int | None:
        """Take `name` for `owner` until `now + ttl_s`: when nobody holds it, its lease lapsed,
        or `owner` held it in an earlier life. The generation now held, or None."""
        until = stamp(now + timedelta(seconds=ttl_s))

        def take(db: Database) -> int | None:
            inserted = db.execute(
                "INSERT INTO leases (name, owner, generation, expires_at) VALUES (?, ?, 1, ?) "
                "ON CONFLICT (name) DO NOTHING",
                [name, owner, until],
            ).rowcount
            if inserted == 1:
                return 1
            row = db.execute(
                "SELECT owner, generation, expires_at FROM leases WHERE name = ?", [name]
            ).fetchone()
            if row is None:
                return None
            held_by, generation, expires_at = row
            if not (expires_at < stamp(now) or held_by == owner):
                return None
            moved = db.execute(
                "UPDATE leases SET owner = ?, generation = ?, expires_at = ? "
                "WHERE name = ? AND generation = ?",
                [owner, generation + 1, until, name, generation],
            ).rowcount
            return int(generation) + 1 if moved == 1 else None

        return await self._store.call(take)

    async def renew(
        self, held: Mapping[str, int], *, owner: str, now: datetime, ttl_s: float
    ) -> set[str]:
        """Extend every lease of `held` (name -> generation) to `now + ttl_s`, in one
        transaction; returns the names that moved on (another replica holds them now)."""
        until = stamp(now + timedelta(seconds=ttl_s))
        items = list(held.items())

        def extend(db: Database) -> set[str]:
            lost = set()
            with db.atomic():
                for name, generation in items:
                    if (
                        db.execute(
                            "UPDATE leases SET expires_at = ? "
                            "WHERE name = ? AND owner = ? AND generation = ?",
                            [until, name, owner, generation],
                        ).rowcount
                        != 1
                    ):
                        lost.add(name)
            return lost

        return await self._store.call(extend) if items else set()

    async def release(self, name: str, *, generation: int) -> bool:
        """Give a lease up (it lapses at once), unless it moved on already."""
        return await self._store.call(
            lambda db: (
                db.execute(
                    "UPDATE leases SET expires_at = ? WHERE name = ? AND generation = ?",
                    [RELEASED, name, generation],
                ).rowcount
                == 1
            )
        )

    async def holders(self, names: Iterable[str]) -> dict[str, Holder]:
        wanted = list(names)
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        sql = f"SELECT name, owner, generation, expires_at FROM leases WHERE name IN ({marks})"  # noqa: S608

        def read(db: Database) -> dict[str, Holder]:
            return {r[0]: Holder(r[1], int(r[2]), r[3]) for r in db.execute(sql, wanted).fetchall()}

        return await self._store.call(read)

    async def adoptable_runs(
        self, states: Iterable[str], *, now: datetime, quiet_since: datetime
    ) -> list[str]:
        """Runs in `states` whose lease lapsed, or that never had one and have not changed
        since `quiet_since` (a run just approved is the approving replica's to take), oldest
        first."""
        wanted = list(states)
        marks = ",".join("?" * len(wanted))
        sql = (
            "SELECT d.id FROM deployments d LEFT JOIN leases l ON l.name = 'run:' || d.id "  # noqa: S608
            f"WHERE d.state IN ({marks}) "
            "AND ((l.name IS NULL AND d.updated_at < ?) OR l.expires_at < ?) "
            "ORDER BY d.created_at"
        )
        args = [*wanted, quiet_since.isoformat(), stamp(now)]
        return await self._store.call(lambda db: [r[0] for r in db.execute(sql, args).fetchall()])

    async def alive(self, replica_ids: Iterable[str], *, now: datetime) -> set[str]:
        """The replicas among `replica_ids` whose presence lease has not lapsed."""
        found = await self.holders(presence_lease(r) for r in replica_ids)
        current = stamp(now)
        return {h.owner for h in found.values() if h.expires_at >= current}

    async def presences(self) -> dict[str, str]:
        """Every replica that ever held a presence lease, with its expiry."""
        return await self._store.call(
            lambda db: {
                r[0]: r[1]
                for r in db.execute(
                    "SELECT owner, expires_at FROM leases WHERE name LIKE 'replica:%'"
                ).fetchall()
            }
        )
