"""`/deploy history` and `/deploy status` read the deployments through indexes (issue 17,
point 3): every statement they send is planned by SQLite as an index search (or an index read
from its newest end that stops after the page), never a scan of a table or a sort of the runs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from store.db import Store
from store.deploy.models import DeploymentState
from store.deploy.repository import Deployments
from tests.store.test_deployments import T0, make_run


@pytest.fixture
async def store(database: Path | str) -> AsyncIterator[Store]:
    opened = await Store.open(database)
    deployments = Deployments(opened)
    for i in range(12):
        run = make_run(
            f"run-{i:02d}",
            environment=("staging", "production")[i % 2],
            state=DeploymentState.SUCCEEDED,
        )
        await deployments.create(run.model_copy(update={"created_at": T0 + timedelta(hours=i)}))
    yield opened
    await opened.close()


async def _plans(store: Store, read: Callable[[], Awaitable[Any]]) -> dict[str, list[str]]:
    """Each SELECT `read` sends, with SQLite's plan for it."""
    sent: list[str] = []
    await store.call(lambda db: db.conn.set_trace_callback(sent.append))
    try:
        await read()
    finally:
        await store.call(lambda db: db.conn.set_trace_callback(None))

    def explain(db: Any) -> dict[str, list[str]]:
        return {
            sql: [str(row[3]) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()]
            for sql in sent
            if sql.lstrip().upper().startswith("SELECT")
        }

    return await store.call(explain)


def _table_scans_and_sorts(plans: dict[str, list[str]]) -> dict[str, list[str]]:
    """The statements that scan a table, or sort runs (sorting one run's few targets or
    approvals, found by its id, is fine)."""
    return {
        sql: plan
        for sql, plan in plans.items()
        if any(step.startswith("SCAN") and "INDEX" not in step for step in plan)
        or (
            any("TEMP B-TREE" in step for step in plan)
            and any(step.startswith(("SCAN deployments", "SEARCH deployments ")) for step in plan)
        )
    }


@pytest.mark.sqlite_only
@pytest.mark.parametrize("environment", [None, "production"])
async def test_history_reads_the_newest_page_through_an_index(
    store: Store, environment: str | None
) -> None:
    deployments = Deployments(store)

    plans = await _plans(store, lambda: deployments.list_recent(environment=environment, limit=10))

    assert len(plans) > 1
    assert _table_scans_and_sorts(plans) == {}


async def test_history_gets_the_newest_runs_in_order(store: Store) -> None:
    deployments = Deployments(store)

    runs = await deployments.list_recent(environment="production", limit=3)

    assert [r.id for r in runs] == ["run-11", "run-09", "run-07"]


@pytest.mark.sqlite_only
async def test_status_of_one_run_searches_by_its_id(store: Store) -> None:
    deployments = Deployments(store)

    plans = await _plans(store, lambda: deployments.get("run-05"))

    assert plans
    assert _table_scans_and_sorts(plans) == {}


@pytest.mark.sqlite_only
async def test_a_source_environments_recent_setbacks_are_searched_not_scanned(
    store: Store,
) -> None:
    deployments = Deployments(store)

    plans = await _plans(store, lambda: deployments.finished_since(environment="staging", since=T0))

    assert _table_scans_and_sorts(plans) == {}
