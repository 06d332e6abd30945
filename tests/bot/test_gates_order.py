"""The deploy order (seed 001: backend services in parallel, then the API gateway, then the
front ends), seen in the order of the bot's UpdateService calls to moto, and a failing group
stopping the later groups and taking back the earlier ones."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest

from bot.deploy.views import APPROVE_ACTION
from pipeline.aws import BotoEcs
from pipeline.kernel.config import Config
from pipeline.kernel.ports import Ecs
from store.deploy.models import DeploymentState, TargetStatus
from tests.conftest import STAGING_PATH, BotFactory, config_dict
from tests.driver import BotDriver, plan_cards, run_id_of
from tests.fakes.ecs import PassThroughEcs
from tests.fakes.ecs_world import REPO, EcsWorld
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack

BACKENDS = ("auth-svc", "market-svc")
# Long enough for a slow machine; only reached when the backends do not run in parallel.
PARALLEL_BACKSTOP_S = 10


class RecordingEcs(PassThroughEcs):
    """The bot's ECS, writing each UpdateService (service, task definition) to `log`."""

    def __init__(self, inner: Ecs, log: list[tuple[str, str]]) -> None:
        super().__init__(inner)
        self.log = log
        self.updated: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)

    async def update_service(
        self,
        *,
        region: str,
        cluster: str,
        service: str,
        task_definition: str | None = None,
        desired: int | None = None,
    ) -> None:
        await super().update_service(
            region=region,
            cluster=cluster,
            service=service,
            task_definition=task_definition,
            desired=desired,
        )
        self.log.append(("update", service))
        self.updated[service].set()


@pytest.fixture
def estate(world: EcsWorld) -> EcsWorld:
    """The three services of conftest, and a front end `web`."""
    world.add_service("staging", "web", "v1.3.0")
    world.add_service("production", "web", "v1.2.0")
    return world


@pytest.fixture
def config(health: FakeHealth, estate: EcsWorld) -> Config:
    data = config_dict(health)
    data["services"]["web"] = {
        "image": f"{REPO}/web",
        "health_url": {
            "staging": health.url("web") + STAGING_PATH,
            "production": health.url("web"),
        },
    }
    data["environments"]["production"]["groups"] = [list(BACKENDS), ["api-gateway"], ["web"]]
    return Config.model_validate(data)


@pytest.fixture
def log() -> list[tuple[str, str]]:
    return []


@pytest.fixture
async def bot(make_bot: BotFactory, log: list[tuple[str, str]]) -> BotDriver:
    return await make_bot(RecordingEcs(BotoEcs(), log))


def record_health(health: FakeHealth, log: list[tuple[str, str]]) -> None:
    async def before(service: str, path: str) -> None:
        if not path.startswith(STAGING_PATH):
            log.append(("health", service))

    health.before_answer = before


async def deploy_everything(bot: BotDriver, slack: FakeSlack) -> str:
    await bot.command("production all", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[-1])
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2")
    return run_id


def updates(log: list[tuple[str, str]]) -> list[str]:
    return [service for kind, service in log if kind == "update"]


async def test_the_groups_update_in_order_backends_then_the_gateway_then_the_front_end(
    bot: BotDriver, slack: FakeSlack, health: FakeHealth, log: list[tuple[str, str]]
) -> None:
    record_health(health, log)

    run_id = await deploy_everything(bot, slack)

    assert (await bot.runtime.runs.get(run_id)).state is DeploymentState.SUCCEEDED
    order = updates(log)
    assert sorted(order[:2]) == sorted(BACKENDS)
    assert order[2:] == ["api-gateway", "web"]
    # Each group starts only once the one before is healthy.
    assert log.index(("update", "api-gateway")) > max(
        log.index(("health", name)) for name in BACKENDS
    )
    assert log.index(("update", "web")) > log.index(("health", "api-gateway"))


async def test_the_backends_of_one_group_roll_out_together(
    bot: BotDriver, slack: FakeSlack, health: FakeHealth, log: list[tuple[str, str]]
) -> None:
    """auth-svc's health check is held until market-svc was updated: one after the other,
    market-svc would never start and the backstop would fail the test."""
    recorder = bot.ecs
    assert isinstance(recorder, RecordingEcs)

    async def before(service: str, path: str) -> None:
        if service == "auth-svc" and not path.startswith(STAGING_PATH):
            async with asyncio.timeout(PARALLEL_BACKSTOP_S):
                await recorder.updated["market-svc"].wait()

    health.before_answer = before

    run_id = await deploy_everything(bot, slack)

    assert (await bot.runtime.runs.get(run_id)).state is DeploymentState.SUCCEEDED
    assert sorted(updates(log)[:2]) == sorted(BACKENDS)


async def test_a_failing_group_stops_the_later_groups_and_takes_back_the_earlier_ones(
    bot: BotDriver,
    slack: FakeSlack,
    health: FakeHealth,
    estate: EcsWorld,
    log: list[tuple[str, str]],
) -> None:
    before = {s: estate.task_definition("production", s) for s in (*BACKENDS, "api-gateway", "web")}
    # The new api-gateway is broken; the one it replaced still answers.
    health.status_for = lambda service, path: (
        503
        if service == "api-gateway"
        and not path.startswith(STAGING_PATH)
        and estate.version("production", "api-gateway") == "v1.3.0"
        else 200
    )

    run_id = await deploy_everything(bot, slack)

    run = await bot.runtime.runs.get(run_id)
    statuses = {t.service: t.status for t in run.targets}
    assert run.state is DeploymentState.ROLLED_BACK
    assert "web" not in updates(log)
    assert statuses["web"] is TargetStatus.PENDING
    assert statuses["api-gateway"] is TargetStatus.ROLLED_BACK
    for name in (*BACKENDS, "api-gateway"):
        assert statuses[name] is TargetStatus.ROLLED_BACK
    assert {s: estate.task_definition("production", s) for s in before} == before
