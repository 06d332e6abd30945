"""A canary owner that dies mid-bake: another replica resumes the bake at its stage, with the
bake time that was left, and the traffic weights never step back."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.deploy.views import APPROVE_ACTION
from pipeline.aws import BotoEcs
from pipeline.kernel.config import Config
from store.deploy.models import DeploymentState, StageStatus
from tests.conftest import config_dict
from tests.driver import plan_cards, run_id_of
from tests.fakes.canary_world import CanaryWorld
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack
from tests.replicas.rig import RENEW_S, TTL_S, Life, MakeReplica, ReplicaClock, settle

CANARIES = ("auth-svc", "market-svc")
MINUTE = 60.0
BAKES_MIN = (2, 4, 2)
BACKSTOP_S = 10


@pytest.fixture
def canary(world: EcsWorld) -> CanaryWorld:
    estate = CanaryWorld(world, "production")
    for name in CANARIES:
        svc = estate.add(name, "v1.2.0")
        estate.register(svc.target_groups["green"], 2)
    return estate


@pytest.fixture
def config(health: FakeHealth, canary: CanaryWorld) -> Config:
    data = config_dict(health)
    prod = data["environments"]["production"]
    prod["canary"] = {
        "stages": [
            {"weight": w, "bake": f"{m}m"} for w, m in zip((5, 50, 100), BAKES_MIN, strict=True)
        ],
        "check_every": "1m",
        "min_requests": 50,
    }
    for name in CANARIES:
        colours = {c: health.url(f"{name}-{c}") for c in ("blue", "green")}
        data["services"][name]["canary"] = {"production": canary.canary_config(name, colours)}
        data["services"][name]["smoke"] = [{"path": "/health", "version_field": "version"}]
    return Config.model_validate(data)


async def test_the_owner_dies_mid_bake_and_the_weights_never_step_back(
    make_replica: MakeReplica,
    replica_clock: ReplicaClock,
    canary: CanaryWorld,
    health: FakeHealth,
    slack: FakeSlack,
) -> None:
    health.version_for = lambda service: "1.3.0" if service.endswith("-green") else "1.2.0"
    for name in CANARIES:
        for minute in range(40):
            canary.traffic(
                name,
                "green",
                requests=1000,
                errors=0,
                at=replica_clock.now() + timedelta(minutes=minute, seconds=30),
            )
    weights: list[int] = []
    replica_clock.observe = lambda: weights.append(canary.weights("auth-svc")["green"])
    reached, go = asyncio.Event(), asyncio.Event()
    probes_at_50: list[str] = []

    async def hold_at_50(service: str, path: str) -> None:
        """The owner's fourth bake check at 50% never gets its answer (until it is dead)."""
        if service != "auth-svc-green" or canary.weights("auth-svc")["green"] != 50:
            return
        probes_at_50.append(path)
        if probes_at_50.count(path) >= 4 and not go.is_set():
            reached.set()
            await go.wait()

    health.before_answer = hold_at_50
    a = await make_replica("replica-a", BotoEcs())
    b = await make_replica("replica-b", BotoEcs())
    await a.driver.command("production all", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[-1])
    await a.driver.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await a.driver.click(APPROVE_ACTION, run_id, user="UAPPROVER2", wait_runs=False)
    await asyncio.wait_for(reached.wait(), BACKSTOP_S)
    at_death = await b.runtime.runs.get(run_id)
    baked = at_death.stages[1].elapsed_s

    a.cut_off(Life.DEAD)
    go.set()
    await replica_clock.pass_time(TTL_S + 2 * RENEW_S)
    await settle(b)

    run = await b.runtime.runs.get(run_id)
    assert replica_clock.first("adopted").replica == "replica-b"
    assert run.state is DeploymentState.SUCCEEDED
    assert [(s.weight, s.status) for s in run.stages] == [
        (5, StageStatus.PASSED),
        (50, StageStatus.PASSED),
        (100, StageStatus.PASSED),
    ]
    assert 0 < baked < BAKES_MIN[1] * MINUTE
    # Resumed with the bake time that was left, not from the start of the stage.
    events = await b.runtime.deploy._deployments.events(run_id)
    full = next(
        e.at for e in events if e.stage == "traffic" and "100% on green" in (e.detail or "")
    )
    adopted_at = replica_clock.start + timedelta(seconds=replica_clock.first("adopted").at_s)
    assert (full - adopted_at).total_seconds() <= BAKES_MIN[1] * MINUTE - baked + RENEW_S
    assert weights == sorted(weights)
    assert weights[-1] == 100
    for name in CANARIES:
        shifts = [e.detail for e in events if e.stage == "traffic" and e.service == name]
        assert shifts == [
            "5% on green, 95% on blue",
            "50% on green, 50% on blue",
            "100% on green, 0% on blue",
        ]
        assert canary.weights(name) == {"blue": 0, "green": 100}
