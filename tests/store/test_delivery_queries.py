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
async def store(database: Path | str) -> AsyncIterator[Store]:
    """Two staging and two production deploys that succeeded, the production ones watched."""
    opened = await Store.open(database)
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


@pytest.mark.sqlite_only
@pytest.mark.parametrize("service", [None, "api-gateway"])
async def test_every_read_of_the_figures_searches_an_index(
    store: Store, service: str | None
) -> None:
    delivery = Delivery(store)

    async def read() -> None:
        await delivery.records(
            "production",
            "staging",
            since=T0 - timedelta(days=30),
            until=T0 + timedelta(days=1),
            service=service,
            severities=("p1", "p2"),
        )
        await delivery.watching("production", [("api-gateway", T0)], longest_s=7 * 86400)
        await delivery.services_of(["run-1"])

    plans = await _plans(store, read)

    assert len(plans) == 7, "runs, promotions, rollbacks, breaches, incidents, watches, services"
    assert _table_scans_and_sorts(plans) == {}
    steps = " / ".join(step for plan in plans.values() for step in plan)
    for index in (
        "COVERING INDEX deployments_env_kind_state_finished",
        "COVERING INDEX deployment_targets_service_version",
        "deployment_targets_reverted_by",
        "watch_alerts_kind_at",
        "incidents_opened",
        "watches_service_ends",
    ):
        assert index in steps
    assert "SEARCH sd USING INDEX deployments_env" not in steps, (
        "the source's runs are found by version, not read one by one"
    )


async def test_a_promoted_version_reads_its_first_success_in_the_source(store: Store) -> None:
    """run-0 and run-2 took v1.3.0 of api-gateway to staging; run-1 and run-3 promoted it."""
    delivery = Delivery(store)

    found = await delivery.records(
        "production", "staging", since=T0 - timedelta(days=1), until=T0 + timedelta(days=1)
    )

    assert [r.id for r in found.runs] == ["run-1", "run-3"]
    assert {(p.deployment_id, p.first_in_source) for p in found.promoted} == {
        ("run-1", T0),
        ("run-3", T0),
    }
