"""`/deploy stats` reads its records through indexes (issue 18, point 4): the period's runs by
environment and end, the rest by key, a promoted version's first success in the source
environment by service and version (migration 14), and incidents by opening time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from store.db import Store
from store.delivery import Delivery
from store.deploy.models import DeploymentState
from store.deploy.repository import Deployments
from store.watch import Watch, Watches, WatchState
from tests.store.test_deployments import T0, make_run
from tests.store.test_history_queries import _plans, _table_scans_and_sorts


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """Two staging and two production deploys that succeeded, the production ones watched."""
    opened = await Store.open(tmp_path / "chatops.db")
    deployments = Deployments(opened)
    for i in range(4):
        at = T0 + timedelta(hours=i)
        run = make_run(
            f"run-{i}",
            environment=("staging", "production")[i % 2],
            state=DeploymentState.SUCCEEDED,
        )
        await deployments.create(run.model_copy(update={"created_at": at, "finished_at": at}))
        if run.environment == "production":
            await Watches(opened).start(
                [
                    Watch(
                        id=f"run-{i}:api-gateway",
                        deployment_id=run.id,
                        service="api-gateway",
                        environment="production",
                        started_at=at,
                        ends_at=at + timedelta(hours=24),
                        next_check_at=at,
                        state=WatchState.WATCHING,
                    )
                ]
            )
    yield opened
    await opened.close()


async def test_the_records_of_a_period_are_read_through_indexes(store: Store) -> None:
    delivery = Delivery(store)

    plans = await _plans(
        store,
        lambda: delivery.records(
            "production",
            "staging",
            since=T0 - timedelta(days=30),
            until=T0 + timedelta(days=1),
            severities=("p1", "p2"),
        ),
    )

    assert len(plans) == 2, "the changes, then the incidents"
    assert _table_scans_and_sorts(plans) == {}
    steps = [step for plan in plans.values() for step in plan]
    assert any("deployment_targets_service_version" in step for step in steps)
    assert any("incidents_opened" in step for step in steps)
    assert not any("SEARCH sd USING INDEX deployments_env" in step for step in steps), (
        "the source's runs are found by version, not read one by one"
    )
