"""A replica that stops mid-rollout: another one takes the run over from its recorded step,
with no second RegisterTaskDefinition or UpdateService, and its card says how it ended."""

from __future__ import annotations

import asyncio
import re
from collections import Counter

from bot.deploy.views import APPROVE_ACTION
from pipeline.aws import BotoEcs
from store.deploy.models import DeploymentState
from store.leases import run_lease
from tests.conftest import SERVICES
from tests.driver import last_card, plan_cards, run_id_of, thread
from tests.fakes.ecs import HeldEcs, revisions
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.slack_api import FakeSlack
from tests.replicas.rig import (
    RENEW_S,
    TTL_S,
    CountingEcs,
    Life,
    MakeReplica,
    ReplicaClock,
    SkewedClock,
    settle,
)

BACKSTOP_S = 10


async def test_three_replicas_the_owner_stops_mid_rollout_and_another_finishes_it_once(
    make_replica: MakeReplica, replica_clock: ReplicaClock, world: EcsWorld, slack: FakeSlack
) -> None:
    calls: list[tuple[str, str]] = []
    held = HeldEcs(CountingEcs(BotoEcs(), calls))
    a = await make_replica("replica-a", held)
    b = await make_replica("replica-b", CountingEcs(BotoEcs(), calls))
    c = await make_replica("replica-c", CountingEcs(BotoEcs(), calls))

    await a.driver.command("production all", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[-1])
    await a.driver.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await a.driver.click(APPROVE_ACTION, run_id, user="UAPPROVER2", wait_runs=False)
    await asyncio.wait_for(held.holding.wait(), BACKSTOP_S)
    holder = (await a.runtime.keeper.leases.holders([run_lease(run_id)]))[run_lease(run_id)]
    assert holder.owner == "replica-a"
    updated_by_a = Counter(s for call, s in calls if call == "UpdateService")

    a.cut_off(Life.DEAD)  # killed: no renewal, nothing more from it
    killed_at = replica_clock.elapsed()
    await replica_clock.pass_time(TTL_S + 2 * RENEW_S)
    await settle(b, c)

    adoption = replica_clock.first("adopted")
    run = await b.runtime.runs.get(run_id)
    taken = (await b.runtime.keeper.leases.holders([run_lease(run_id)]))[run_lease(run_id)]
    assert adoption.replica in ("replica-b", "replica-c")
    assert taken.owner == adoption.replica
    assert taken.generation == holder.generation + 1
    assert adoption.at_s - killed_at <= TTL_S + RENEW_S
    assert run.state is DeploymentState.SUCCEEDED
    assert updated_by_a  # A had moved services before it stopped
    for service in SERVICES:
        assert world.version("production", service) == "v1.3.0"
        assert len(revisions(world, "production", service)) == 2
    assert Counter(s for call, s in calls if call == "UpdateService") == dict.fromkeys(SERVICES, 1)
    assert Counter(s for call, s in calls if call == "RegisterTaskDefinition") == dict.fromkeys(
        SERVICES, 1
    )
    assert len(plan_cards(slack)) == 1
    assert "✅ Production deployment successful" in last_card(slack)
    # The thread's progress goes on where the dead owner left it: counts only rise, up to all.
    counts = [
        int(m.group(1))
        for t in thread(slack)
        if (m := re.search(r"(\d+)/3 services rolled out and healthy", t))
    ]
    assert counts == sorted(counts)
    assert len(set(counts)) == len(counts)
    assert counts[-1] == len(SERVICES), thread(slack)


async def test_a_replica_cut_off_from_the_database_stops_before_another_takes_over(
    make_replica: MakeReplica, replica_clock: ReplicaClock, world: EcsWorld, slack: FakeSlack
) -> None:
    calls: list[tuple[str, str]] = []
    held = HeldEcs(CountingEcs(BotoEcs(), calls))
    a = await make_replica("replica-a", held)
    b = await make_replica("replica-b", CountingEcs(BotoEcs(), calls))
    await a.driver.command("production api-gateway", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[-1])
    await a.driver.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await a.driver.click(APPROVE_ACTION, run_id, user="UAPPROVER2", wait_runs=False)
    await asyncio.wait_for(held.holding.wait(), BACKSTOP_S)

    a.cut_off(Life.PARTITIONED)  # its database calls hang; its own jobs go on
    await replica_clock.pass_time(TTL_S + 2 * RENEW_S)
    await settle(b)

    stopped = replica_clock.first("stopped")
    adopted = replica_clock.first("adopted")
    assert (stopped.replica, stopped.runs) == ("replica-a", [run_id])
    assert (adopted.replica, adopted.runs) == ("replica-b", [run_id])
    assert stopped.at_s <= TTL_S - a.runtime.keeper.margin_s < adopted.at_s
    assert not a.runtime.runner.owns(run_id)
    assert (await b.runtime.runs.get(run_id)).state is DeploymentState.SUCCEEDED

    # The partition heals and A's held ECS call returns: whatever A still had queued is
    # refused by the lease's generation, and A sends nothing more to ECS.
    events_before = await b.runtime.deploy._deployments.events(run_id)
    a.reconnect()
    held.release()
    await asyncio.wait_for(a.runtime.runner.wait_idle(), BACKSTOP_S)
    assert await b.runtime.deploy._deployments.events(run_id) == events_before
    assert [e.status for e in events_before].count("interrupted") == 0
    assert Counter(s for call, s in calls if call == "UpdateService") == {"api-gateway": 1}
    assert world.version("production", "api-gateway") == "v1.3.0"


async def test_a_stalled_owner_that_wakes_after_a_takeover_is_fenced_by_the_generation(
    make_replica: MakeReplica, replica_clock: ReplicaClock, world: EcsWorld, slack: FakeSlack
) -> None:
    # B's wall clock runs 12 s ahead, more than the fence's margin: it takes the lease over
    # while A (paused, then woken) still trusts it locally. Only the generation stops A.
    calls: list[tuple[str, str]] = []
    held = HeldEcs(CountingEcs(BotoEcs(), calls))
    a = await make_replica("replica-a", held)
    b = await make_replica(
        "replica-b", CountingEcs(BotoEcs(), calls), clock=SkewedClock(replica_clock, 12.0)
    )
    await a.driver.command("production api-gateway", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[-1])
    await a.driver.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await a.driver.click(APPROVE_ACTION, run_id, user="UAPPROVER2", wait_runs=False)
    await asyncio.wait_for(held.holding.wait(), BACKSTOP_S)

    a.life = Life.FROZEN
    await replica_clock.pass_time(2 * RENEW_S)
    await settle(b)
    assert replica_clock.first("adopted").replica == "replica-b"
    assert (await b.runtime.runs.get(run_id)).state is DeploymentState.SUCCEEDED
    assert a.runtime.runner.owns(run_id)  # A's local deadline has not passed

    events = await b.runtime.deploy._deployments.events(run_id)
    a.life = Life.ALIVE
    held.release()  # A wakes inside its ECS wait and goes on
    await asyncio.wait_for(a.runtime.runner.wait_idle(), BACKSTOP_S)

    assert await b.runtime.deploy._deployments.events(run_id) == events
    assert not a.runtime.runner.owns(run_id)
    assert (await b.runtime.runs.get(run_id)).state is DeploymentState.SUCCEEDED
    assert Counter(s for call, s in calls if call == "UpdateService") == {"api-gateway": 1}
