"""ECS refusing or losing calls, through a proxy in front of moto: what people read, and that a
run restarted after AWS took its registration (or while it was on its way) registers no second
revision."""

from __future__ import annotations

import asyncio

from pipeline.aws import BotoEcs
from store.deploy.models import DeploymentState
from tests.conftest import BotFactory
from tests.driver import last_card, plan_cards, run_id_of
from tests.fakes.aws_proxy import EcsProxy
from tests.fakes.ecs import revisions
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.slack_api import FakeSlack

HOLD_BACKSTOP_S = 10


async def test_a_deploy_aws_refuses_to_describe_says_which_action_resource_and_permission(
    make_bot: BotFactory, ecs_proxy: EcsProxy, served_world: EcsWorld, slack: FakeSlack
) -> None:
    bot = await make_bot(BotoEcs())
    ecs_proxy.fail_next("DescribeServices", "AccessDeniedException")

    await bot.command("staging api-gateway v1.4.0", user="UDEV")

    said = slack.responses[-1]
    assert said["response_type"] == "ephemeral"
    assert "AWS refused `ecs:DescribeServices` on service `api-gateway` in cluster " in said["text"]
    assert "`skillancer-staging` (us-east-1) (AccessDeniedException)" in said["text"]
    assert "lacks the IAM permission `ecs:DescribeServices`" in said["text"]
    assert "Something went wrong" not in said["text"]
    assert plan_cards(slack) == []
    assert await bot.runtime.deploy.history(None) == []


async def test_a_production_promotion_refused_on_the_source_environment_says_so_too(
    make_bot: BotFactory, ecs_proxy: EcsProxy, served_world: EcsWorld, slack: FakeSlack
) -> None:
    """Planning reads both environments at once; the refusal is not lost in the crowd."""
    bot = await make_bot(BotoEcs())
    ecs_proxy.fail_next("DescribeServices", "AccessDeniedException", times=2)

    await bot.command("production api-gateway", user="UDEV")

    said = slack.responses[-1]["text"]
    assert "AWS refused `ecs:DescribeServices`" in said
    assert "Something went wrong" not in said


async def test_a_run_aws_refuses_to_register_fails_with_the_permission_on_its_card(
    make_bot: BotFactory, ecs_proxy: EcsProxy, served_world: EcsWorld, slack: FakeSlack
) -> None:
    before = served_world.task_definition("staging", "api-gateway")
    bot = await make_bot(BotoEcs())
    ecs_proxy.fail_next("RegisterTaskDefinition", "AccessDeniedException")

    await bot.command("staging api-gateway v1.4.0", user="UDEV")

    run = await bot.runtime.runs.get(run_id_of(plan_cards(slack)[0]))
    assert run.state is DeploymentState.ROLLED_BACK
    assert run.targets[0].new_task_def is None
    card = last_card(slack)
    assert "🚨 Staging deployment FAILED" in card
    assert "AWS refused `ecs:RegisterTaskDefinition`" in card
    assert "`iam:PassRole`" in card
    assert served_world.task_definition("staging", "api-gateway") == before
    assert revisions(served_world, "staging", "api-gateway") == [before]


async def test_a_run_stopped_after_aws_took_its_registration_reuses_that_revision(
    make_bot: BotFactory, ecs_proxy: EcsProxy, served_world: EcsWorld, slack: FakeSlack
) -> None:
    """Stopped while AWS had registered the revision but the answer had not come back."""
    before = served_world.task_definition("staging", "api-gateway")
    held = ecs_proxy.hold("RegisterTaskDefinition", after_effect=True)
    bot = await make_bot(BotoEcs())
    await bot.command("staging api-gateway v1.4.0", user="UDEV", wait_runs=False)
    await asyncio.wait_for(held.reached.wait(), HOLD_BACKSTOP_S)
    run_id = run_id_of(plan_cards(slack)[0])

    await bot.stop()
    held.release()
    await bot.start()
    await bot.settle()

    run = await bot.runtime.runs.get(run_id)
    assert run.state is DeploymentState.SUCCEEDED
    assert ecs_proxy.count("RegisterTaskDefinition") == 1
    [new] = [r for r in revisions(served_world, "staging", "api-gateway") if r != before]
    assert run.targets[0].new_task_def == new
    assert served_world.task_definition("staging", "api-gateway") == new
    assert served_world.version("staging", "api-gateway") == "v1.4.0"
    assert "✅ Staging deployment successful" in last_card(slack)


async def test_a_registration_landing_after_the_restarted_runs_lookup_is_reused_not_doubled(
    make_bot: BotFactory, ecs_proxy: EcsProxy, served_world: EcsWorld, slack: FakeSlack
) -> None:
    """Issue 16: stopped while its RegisterTaskDefinition was on its way, the restarted run
    looked for its revision before that call landed, and registered a second one."""
    before = served_world.task_definition("staging", "api-gateway")
    in_flight = ecs_proxy.hold("RegisterTaskDefinition")
    bot = await make_bot(BotoEcs())
    await bot.command("staging api-gateway v1.4.0", user="UDEV", wait_runs=False)
    await asyncio.wait_for(in_flight.reached.wait(), HOLD_BACKSTOP_S)
    run_id = run_id_of(plan_cards(slack)[0])
    await bot.stop()
    lookup = ecs_proxy.hold("ListTaskDefinitions", after_effect=True)

    await bot.start()
    await asyncio.wait_for(lookup.reached.wait(), HOLD_BACKSTOP_S)
    in_flight.release()
    await asyncio.wait_for(in_flight.landed.wait(), HOLD_BACKSTOP_S)
    lookup.release()
    await bot.settle()

    run = await bot.runtime.runs.get(run_id)
    assert run.state is DeploymentState.SUCCEEDED
    [new] = [r for r in revisions(served_world, "staging", "api-gateway") if r != before]
    assert run.targets[0].new_task_def == new
    assert served_world.task_definition("staging", "api-gateway") == new
    assert ecs_proxy.count("RegisterTaskDefinition") == 1
    assert "✅ Staging deployment successful" in last_card(slack)
