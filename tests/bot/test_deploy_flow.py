"""End to end: signed /deploy -> plan card -> approvals -> ECS on the new revision -> record."""

from __future__ import annotations

from bot.deploy.views import APPROVE_ACTION
from store.deploy.models import DeploymentState, TargetStatus
from tests.driver import BotDriver, last_card, plan_cards, run_id_of
from tests.fakes.ecs import put_version
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.slack_api import FakeSlack


def _card_id(slack: FakeSlack) -> str:
    card = slack.of("chat.postMessage")[0]
    buttons = next(b for b in card["blocks"] if b["type"] == "actions")
    return str(buttons["elements"][0]["value"])


async def test_production_deploy_with_two_approvals_promotes_staging_versions(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld
) -> None:
    before = {s: world.task_definition("production", s) for s in ("api-gateway", "auth-svc")}

    reply = await bot.command("production api-gateway,auth-svc")
    run_id = _card_id(slack)
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, run_id, user="ULEAD1")

    assert reply["status"] == 200
    card_text = str(slack.of("chat.postMessage")[0]["blocks"])
    assert "v1.2.0 → *v1.3.0*" in card_text
    for service in ("api-gateway", "auth-svc"):
        assert world.version("production", service) == "v1.3.0"
        assert world.task_definition("production", service) != before[service]
    assert world.version("production", "market-svc") == "v1.2.0"
    run = await bot.runtime.runs.get(run_id)
    assert run.state is DeploymentState.SUCCEEDED
    assert {t.status for t in run.targets} == {TargetStatus.HEALTHY}
    final = slack.of("chat.update")[-1]
    assert "✅ Production deployment successful" in str(final["blocks"])
    assert "Approved by <@UAPPROVER1>, <@ULEAD1>" in str(final["blocks"])


async def test_staging_deploy_with_an_explicit_version_starts_at_once_and_succeeds(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld
) -> None:
    await bot.command("staging auth-svc v1.4.0", user="UDEV")

    run_id = run_id_of(plan_cards(slack)[0])
    run = await bot.runtime.runs.get(run_id)
    assert run.required_approvals == 0
    assert run.approvals == ()
    assert run.state is DeploymentState.SUCCEEDED
    assert world.version("staging", "auth-svc") == "v1.4.0"
    assert world.version("staging", "api-gateway") == "v1.3.0"
    assert "✅ Staging deployment successful" in last_card(slack)


async def test_promotion_skips_a_service_already_on_its_target_and_the_card_says_so(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld
) -> None:
    put_version(world, "production", "auth-svc", "v1.3.0")
    auth_before = world.task_definition("production", "auth-svc")

    await bot.command("production api-gateway,auth-svc")
    run_id = run_id_of(plan_cards(slack)[0])
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2")

    card = str(plan_cards(slack)[0]["blocks"])
    assert "`auth-svc` already on v1.3.0: skipped" in card
    assert "`api-gateway` v1.2.0 → *v1.3.0*" in card
    run = await bot.runtime.runs.get(run_id)
    assert run.state is DeploymentState.SUCCEEDED
    assert [t.service for t in run.active_targets] == ["api-gateway"]
    assert world.task_definition("production", "auth-svc") == auth_before
    assert "`auth-svc` already on v1.3.0: skipped" in last_card(slack)


async def test_nothing_is_deployed_when_every_service_is_already_on_its_target(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld
) -> None:
    put_version(world, "production", "api-gateway", "v1.3.0")

    reply = await bot.command("production api-gateway")

    assert reply["status"] == 200
    said = slack.responses[-1]
    assert said["response_type"] == "ephemeral"
    assert "Nothing to deploy" in said["text"]
    assert "`api-gateway` v1.3.0" in said["text"]
    assert plan_cards(slack) == []
    assert await bot.runtime.deploy.history(None) == []
