"""Fixtures of the replica scenarios: the shared database (a parameter, so the same scenarios
run on each backend), the virtual clock driving the replicas' lease jobs, and replicas."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.settings import Settings
from pipeline.kernel.config import Config
from pipeline.kernel.ports import Ecs
from tests.driver import SIGNING_SECRET, BotDriver
from tests.fakes.slack_api import FakeSlack
from tests.replicas.rig import (
    RENEW_S,
    TTL_S,
    MakeReplica,
    Replica,
    ReplicaClock,
    SkewedClock,
)


@pytest.fixture
def database(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The settings that point every replica at one shared database: a SQLite file in WAL
    mode (several connections and processes share it), then a new PostgreSQL database
    (tests/conftest.py runs each scenario on both backends)."""
    if request.param == "sqlite":
        return {"CHATOPS_DB": str(tmp_path / "shared.db")}
    url: str = request.getfixturevalue("pg_url")
    return {"CHATOPS_DATABASE_URL": url}


@pytest.fixture
def replica_clock() -> ReplicaClock:
    return ReplicaClock()


@pytest.fixture
async def make_replica(
    database: dict[str, str], config: Config, replica_clock: ReplicaClock, slack: FakeSlack
) -> AsyncIterator[MakeReplica]:
    made: list[Replica] = []

    async def make(
        name: str, ecs: Ecs, *, clock: ReplicaClock | SkewedClock | None = None
    ) -> Replica:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            SLACK_BOT_TOKEN="xoxb-test-token",
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=slack.api_url,
            CHATOPS_REPLICA_ID=name,
            CHATOPS_LEASE_TTL_S=str(TTL_S),
            CHATOPS_LEASE_RENEW_S=str(RENEW_S),
            **database,
        )
        driver = BotDriver(
            settings=settings,
            config=config,
            clock=clock or replica_clock,  # type: ignore[arg-type]
            ecs=ecs,
            slack=slack,
        )
        await driver.start()
        replica = Replica(name, driver)
        made.append(replica)
        replica_clock.replicas.append(replica)
        return replica

    yield make
    for replica in made:
        replica.reconnect()
    for replica in made:
        await replica.driver.stop()
