"""Leases, fences and claims on one database shared by two connections (two replicas)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from store.claims import TimerClaims
from store.db import Store
from store.leases import FENCE, Fence, LeaseLost, Leases, fenced
from store.prune import Pruner

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
TTL_S = 20.0


@pytest.fixture
async def stores(database: Path | str) -> AsyncIterator[tuple[Store, Store]]:
    """Two connections to one database, as two replicas have (on each backend)."""
    first = await Store.open(database)
    second = await Store.open(database)
    yield first, second
    await first.close()
    await second.close()


async def test_a_lease_is_taken_once_renewed_by_its_owner_and_taken_over_only_once_lapsed(
    stores: tuple[Store, Store],
) -> None:
    a, b = Leases(stores[0]), Leases(stores[1])

    assert await a.acquire("run:1", owner="ra", now=T0, ttl_s=TTL_S) == 1
    assert await b.acquire("run:1", owner="rb", now=T0, ttl_s=TTL_S) is None
    assert (
        await a.renew({"run:1": 1}, owner="ra", now=T0 + timedelta(seconds=15), ttl_s=TTL_S)
        == set()
    )
    assert await b.acquire("run:1", owner="rb", now=T0 + timedelta(seconds=30), ttl_s=TTL_S) is None
    assert await b.acquire("run:1", owner="rb", now=T0 + timedelta(seconds=36), ttl_s=TTL_S) == 2
    lost = await a.renew({"run:1": 1}, owner="ra", now=T0 + timedelta(seconds=37), ttl_s=TTL_S)
    assert lost == {"run:1"}
    # A replica restarted under the same id takes its own lease back at once.
    assert await b.acquire("run:1", owner="rb", now=T0 + timedelta(seconds=38), ttl_s=TTL_S) == 3


async def test_a_released_lease_is_free_at_once(stores: tuple[Store, Store]) -> None:
    a, b = Leases(stores[0]), Leases(stores[1])
    await a.acquire("run:1", owner="ra", now=T0, ttl_s=TTL_S)

    assert await a.release("run:1", generation=1)
    assert await b.acquire("run:1", owner="rb", now=T0, ttl_s=TTL_S) == 2
    assert not await a.release("run:1", generation=1)  # moved on: nothing to give up


async def test_a_write_fenced_by_an_old_generation_is_refused_and_changes_nothing(
    stores: tuple[Store, Store],
) -> None:
    a, b = Leases(stores[0]), Leases(stores[1])
    await a.acquire("run:1", owner="ra", now=T0, ttl_s=TTL_S)
    await stores[0].call(lambda db: db.execute("CREATE TABLE notes (text TEXT)"))
    lost: list[bool] = []
    fence = Fence(
        "run:1",
        1,
        valid=lambda: True,  # this replica still trusts its lease (a clock far off)
        extend=lambda: ((T0 + timedelta(seconds=TTL_S)).isoformat(), lambda: None),
        lost=lambda: lost.append(True),
    )
    write = fenced(lambda db: db.execute("INSERT INTO notes (text) VALUES ('from ra')"))
    FENCE.set(fence)
    try:
        await stores[0].call(write)
        assert (
            await b.acquire("run:1", owner="rb", now=T0 + timedelta(seconds=60), ttl_s=TTL_S) == 2
        )
        with pytest.raises(LeaseLost):
            await stores[0].call(write)
    finally:
        FENCE.set(None)

    notes = await stores[1].call(lambda db: db.execute("SELECT text FROM notes").fetchall())
    assert notes == [("from ra",)]
    assert lost == [True]


async def test_a_firing_is_claimed_by_one_replica_and_retried_by_another_once_lapsed(
    stores: tuple[Store, Store],
) -> None:
    a, b = TimerClaims(stores[0]), TimerClaims(stores[1])
    due = T0

    assert await a.claim("reminder:i1", due=due, owner="ra", now=T0, ttl_s=120)
    assert not await b.claim("reminder:i1", due=due, owner="rb", now=T0, ttl_s=120)
    # ra died while posting: once its claim lapsed, rb does the work.
    assert await b.claim(
        "reminder:i1", due=due, owner="rb", now=T0 + timedelta(seconds=121), ttl_s=120
    )
    await b.finish("reminder:i1", due=due, owner="rb")
    assert not await a.claim(
        "reminder:i1", due=due, owner="ra", now=T0 + timedelta(hours=1), ttl_s=120
    )
    # A failed attempt gives the firing back at once.
    assert await a.claim("window:d1", due=due, owner="ra", now=T0, ttl_s=120)
    await a.release("window:d1", due=due, owner="ra")
    assert await b.claim("window:d1", due=due, owner="rb", now=T0, ttl_s=120)


async def test_pruning_forgets_old_claims_and_the_leases_of_finished_runs_only(
    stores: tuple[Store, Store],
) -> None:
    store = stores[0]
    leases, claims = Leases(store), TimerClaims(store)
    for run_id, state in (("d-running", "running"), ("d-done", "succeeded")):
        await store.call(
            lambda db, run_id=run_id, state=state: db.execute(
                "INSERT INTO deployments (id, environment, requested_by, state, "
                "required_approvals, created_at, updated_at) "
                "VALUES (?, 'staging', 'U1', ?, 0, ?, ?)",
                [run_id, state, T0.isoformat(), T0.isoformat()],
            )
        )
        await leases.acquire(f"run:{run_id}", owner="ra", now=T0, ttl_s=TTL_S)
    await leases.acquire("replica:ra", owner="ra", now=T0, ttl_s=TTL_S)
    await claims.claim("reminder:i1", due=T0, owner="ra", now=T0, ttl_s=120)

    await Pruner(store, audit_retention_s=90 * 86400).prune(T0 + timedelta(days=2))

    left = await leases.holders(["run:d-running", "run:d-done", "replica:ra"])
    assert set(left) == {"run:d-running"}
    assert await claims.claim("reminder:i1", due=T0, owner="rb", now=T0, ttl_s=120)


async def test_a_run_is_adoptable_once_its_lease_lapsed_or_when_it_never_had_one_for_a_while(
    stores: tuple[Store, Store],
) -> None:
    store = stores[0]
    leases = Leases(store)
    for run_id, updated in (
        ("d-leased", T0),
        ("d-fresh", T0 + timedelta(seconds=50)),
        ("d-old", T0),
    ):
        await store.call(
            lambda db, run_id=run_id, updated=updated: db.execute(
                "INSERT INTO deployments (id, environment, requested_by, state, "
                "required_approvals, created_at, updated_at) "
                "VALUES (?, 'staging', 'U1', 'running', 0, ?, ?)",
                [run_id, T0.isoformat(), updated.isoformat()],
            )
        )
    await leases.acquire("run:d-leased", owner="ra", now=T0 + timedelta(seconds=45), ttl_s=TTL_S)
    now = T0 + timedelta(seconds=60)

    def adoptable(at: datetime) -> object:
        return leases.adoptable_runs(["running"], now=at, quiet_since=at - timedelta(seconds=TTL_S))

    # d-fresh was just approved: the approving replica is about to take its lease.
    assert await adoptable(now) == ["d-old"]
    assert await adoptable(now + timedelta(seconds=20)) == ["d-leased", "d-fresh", "d-old"]
