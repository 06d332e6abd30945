"""A run's card is drawn by the replica that owns the run, and by no other."""

from __future__ import annotations

import asyncio

from bot.deploy.views import APPROVE_ACTION
from pipeline.aws import BotoEcs
from tests.driver import last_card, plan_cards, run_id_of
from tests.fakes.ecs import HeldEcs
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.slack_api import FakeSlack
from tests.replicas.rig import RENEW_S, TTL_S, Life, MakeReplica, ReplicaClock, settle

BACKSTOP_S = 10


async def test_only_the_owner_draws_a_runs_card_even_when_another_sees_it_behind(
    make_replica: MakeReplica, replica_clock: ReplicaClock, world: EcsWorld, slack: FakeSlack
) -> None:
    held = HeldEcs(BotoEcs())
    a = await make_replica("replica-a", held)
    b = await make_replica("replica-b", BotoEcs())
    await a.driver.command("production api-gateway", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[-1])
    await a.driver.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await a.driver.click(APPROVE_ACTION, run_id, user="UAPPROVER2", wait_runs=False)
    await asyncio.wait_for(held.holding.wait(), BACKSTOP_S)
    await a.driver.settle(wait_runs=False)
    a.life = Life.FROZEN  # alive (its lease holds) but drawing nothing from now on
    # B's database shows the card as never drawn: its sweep finds it behind.
    await b.runtime.store.call(
        lambda db: db.execute("DELETE FROM deployment_cards WHERE deployment_id = ?", [run_id])
    )
    updates = len(slack.of("chat.update"))

    run = await b.runtime.runs.get(run_id)
    assert await b.runtime.notifier.converge() == 1
    await b.runtime.notifier.redraw(run)
    await b.driver.settle(wait_runs=False)

    assert len(slack.of("chat.update")) == updates

    a.cut_off(Life.DEAD)
    await replica_clock.pass_time(TTL_S + 2 * RENEW_S)
    await settle(b)
    assert replica_clock.first("adopted").replica == "replica-b"
    assert len(slack.of("chat.update")) > updates
    assert "✅ Production deployment successful" in last_card(slack)
