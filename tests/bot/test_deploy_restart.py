"""Restarts: pending cards keep working, and runs caught mid-rollout are re-attached and finish."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.deploy.views import APPROVE_ACTION
from pipeline.aws import BotoEcs
from pipeline.kernel.ports import ServiceStatus
from pipeline.steps import REGISTER_SETTLE_S
from store.db import Store
from store.deploy.models import (
    Deployment,
    DeploymentId,
    DeploymentState,
    StageEvent,
    Target,
    TargetStatus,
)
from store.deploy.repository import Deployments
from tests.conftest import BotFactory
from tests.driver import BotDriver, last_card, plan_cards, run_id_of, thread
from tests.fakes.clock import FakeClock
from tests.fakes.ecs import FakeEcs, HeldEcs, put_version, revisions
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.slack_api import FakeSlack

HOLD_BACKSTOP_S = 10


async def _start_held_run(bot: BotDriver, slack: FakeSlack, ecs: HeldEcs) -> str:
    """Request and approve a production deploy of api-gateway; return once ECS holds it."""
    await bot.command("production api-gateway", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[-1])
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2", wait_runs=False)
    await asyncio.wait_for(ecs.holding.wait(), HOLD_BACKSTOP_S)
    return run_id


async def _events(bot: BotDriver, run_id: str) -> list[tuple[str, str]]:
    events = await Deployments(bot.runtime.store).events(run_id)
    return [(e.stage, e.status) for e in events]


async def test_approve_buttons_keep_working_after_a_restart(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld
) -> None:
    await bot.command("production api-gateway", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[0])
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")

    await bot.restart()
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2")

    run = await bot.runtime.runs.get(run_id)
    assert run.approved_by == ("UAPPROVER1", "UAPPROVER2")
    assert run.state is DeploymentState.SUCCEEDED
    assert world.version("production", "api-gateway") == "v1.3.0"
    assert "✅ Production deployment successful" in last_card(slack)


async def test_a_run_stopped_mid_rollout_is_reattached_and_finishes_without_a_second_revision(
    make_bot: BotFactory, world: EcsWorld, slack: FakeSlack
) -> None:
    ecs = HeldEcs(BotoEcs())
    bot = await make_bot(ecs)
    run_id = await _start_held_run(bot, slack, ecs)

    await bot.stop()
    ecs.release()
    await bot.start()
    await bot.settle()

    run = await bot.runtime.runs.get(run_id)
    assert run.state is DeploymentState.SUCCEEDED
    assert world.version("production", "api-gateway") == "v1.3.0"
    assert len(revisions(world, "production", "api-gateway")) == 2
    assert ("rollout", "interrupted") in await _events(bot, run_id)
    notice = next(t for t in thread(slack) if "interrupted" in t)
    assert "ECS may still be rolling out `api-gateway` (updating)" in notice
    assert "✅ Production deployment successful" in last_card(slack)


async def test_a_second_deploy_of_a_service_in_flight_is_refused_at_request_time(
    make_bot: BotFactory, world: EcsWorld, slack: FakeSlack
) -> None:
    ecs = HeldEcs(BotoEcs())
    bot = await make_bot(ecs)
    run_id = await _start_held_run(bot, slack, ecs)
    cards = len(plan_cards(slack))

    await bot.command("production api-gateway,auth-svc", user="UOTHER", wait_runs=False)
    ecs.release()
    await bot.settle()

    said = slack.responses[-1]
    assert said["response_type"] == "ephemeral"
    assert f"already has deployment `{run_id}` in progress" in said["text"]
    assert f"/deploy status {run_id}" in said["text"]
    assert len(plan_cards(slack)) == cards
    assert [r.id for r in await bot.runtime.deploy.history(None)] == [run_id]


async def _record_running(
    bot: BotDriver, clock: FakeClock, target: Target, *, stage: str = "rollout"
) -> str:
    """Write a run the way a process that died mid-rollout leaves it, with the bot stopped."""
    run_id = DeploymentId("1700000000-crash1")
    now = clock.now()
    await bot.stop()
    store = await Store.open(bot.settings.db_path)
    try:
        await Deployments(store).create(
            Deployment(
                id=run_id,
                environment="production",
                requested_by="UDEV",
                version=None,
                state=DeploymentState.RUNNING,
                stage=stage,
                required_approvals=2,
                channel_id="CDEPLOYS",
                message_ts="1700000000.000099",
                created_at=now - timedelta(minutes=5),
                updated_at=now,
                approval_due_at=None,
                started_at=now - timedelta(minutes=1),
                finished_at=None,
                error=None,
                targets=(target,),
            )
        )
    finally:
        await store.close()
    return run_id


async def test_a_run_left_running_by_a_crash_is_reattached_at_start(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld, clock: FakeClock
) -> None:
    previous = world.task_definition("production", "api-gateway")
    run_id = await _record_running(
        bot,
        clock,
        Target(
            service="api-gateway",
            current_version="v1.2.0",
            target_version="v1.3.0",
            previous_task_def=previous,
        ),
    )

    await bot.start()
    await bot.settle()

    run = await bot.runtime.runs.get(run_id)
    assert run.state is DeploymentState.SUCCEEDED
    assert world.version("production", "api-gateway") == "v1.3.0"
    assert run.targets[0].previous_task_def == previous
    assert "✅ Production deployment successful" in last_card(slack)


async def test_a_registration_cut_off_before_aws_took_it_is_made_once_when_it_can_no_longer_land(
    make_bot: BotFactory, fake_ecs: FakeEcs, clock: FakeClock
) -> None:
    """A process died with its RegisterTaskDefinition started and nothing registered: the
    restarted run looks for it, on the clock, as long as that call could land, then registers
    the run's one revision."""
    bot = await make_bot(fake_ecs)
    previous = fake_ecs.task_definition("production", "api-gateway")
    run_id = await _record_running(
        bot,
        clock,
        Target(
            service="api-gateway",
            current_version="v1.2.0",
            target_version="v1.3.0",
            previous_task_def=previous,
        ),
    )
    started = clock.now()
    store = await Store.open(bot.settings.db_path)
    try:
        await Deployments(store).record_event(
            StageEvent(
                deployment_id=run_id,
                at=started,
                stage="register",
                status="started",
                service="api-gateway",
            )
        )
    finally:
        await store.close()

    await bot.start()
    await bot.settle()

    run = await bot.runtime.runs.get(run_id)
    assert run.state is DeploymentState.SUCCEEDED
    [new] = fake_ecs.registered
    assert run.targets[0].new_task_def == new
    events = await Deployments(bot.runtime.store).events(run_id)
    [registered] = [e for e in events if (e.stage, e.status) == ("register", "done")]
    assert (registered.at - started).total_seconds() >= REGISTER_SETTLE_S


async def test_a_crashed_run_that_had_already_updated_ecs_continues_without_registering_again(
    bot: BotDriver, world: EcsWorld, clock: FakeClock
) -> None:
    previous = world.task_definition("production", "api-gateway")
    new = put_version(world, "production", "api-gateway", "v1.3.0")
    run_id = await _record_running(
        bot,
        clock,
        Target(
            service="api-gateway",
            current_version="v1.2.0",
            target_version="v1.3.0",
            previous_task_def=previous,
            new_task_def=new,
            status=TargetStatus.UPDATING,
        ),
    )

    await bot.start()
    await bot.settle()

    run = await bot.runtime.runs.get(run_id)
    assert run.state is DeploymentState.SUCCEEDED
    assert world.task_definition("production", "api-gateway") == new
    assert revisions(world, "production", "api-gateway") == [previous, new]


async def test_a_crashed_run_with_a_failed_service_rolls_back_instead_of_retrying_it(
    bot: BotDriver, world: EcsWorld, clock: FakeClock
) -> None:
    """A run stopped after a service failed, before the rollback began, must not retry it."""
    previous = world.task_definition("production", "api-gateway")
    new = put_version(world, "production", "api-gateway", "v1.3.0")
    run_id = await _record_running(
        bot,
        clock,
        Target(
            service="api-gateway",
            current_version="v1.2.0",
            target_version="v1.3.0",
            previous_task_def=previous,
            new_task_def=new,
            status=TargetStatus.FAILED,
            detail="`api-gateway` failed its health check `/health` after 10 attempts",
        ),
    )

    await bot.start()
    await bot.settle()

    run = await bot.runtime.runs.get(run_id)
    assert run.state is DeploymentState.ROLLED_BACK
    assert world.task_definition("production", "api-gateway") == previous
    assert run.error is not None
    assert "failed its health check" in run.error


class OneServiceHeld(HeldEcs):
    """Holds only `service`'s rollout (its describe after its update); the others go on."""

    def __init__(self, inner: BotoEcs, service: str) -> None:
        super().__init__(inner)
        self.service = service

    async def describe(self, *, region: str, cluster: str, service: str) -> ServiceStatus:
        if service == self.service:
            return await super().describe(region=region, cluster=cluster, service=service)
        return await self.inner.describe(region=region, cluster=cluster, service=service)


async def test_after_a_restart_the_threads_progress_goes_on_from_the_services_already_out(
    make_bot: BotFactory, world: EcsWorld, slack: FakeSlack
) -> None:
    ecs = OneServiceHeld(BotoEcs(), "market-svc")
    bot = await make_bot(ecs)
    await bot.command("production all", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[-1])
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2", wait_runs=False)
    await asyncio.wait_for(ecs.holding.wait(), HOLD_BACKSTOP_S)
    await bot.settle(wait_runs=False)

    await bot.stop()
    ecs.release()
    await bot.start()
    await bot.settle()

    progress = [t for t in thread(slack) if "services rolled out and healthy" in t]
    # The count goes on and never starts again at 1 (it said 1/3, 2/3, 1/3 before). Services
    # that end close together may share a line, so 2/3 is not always said on its own.
    counts = [int(p.split(" services")[0].removeprefix("✅ ").split("/")[0]) for p in progress]
    assert counts == sorted(set(counts)), progress
    assert counts[0] == 1
    assert progress[-1].startswith("✅ 3/3")
    assert "`market-svc`" in progress[-1]
    assert "✅ Production deployment successful" in last_card(slack)
