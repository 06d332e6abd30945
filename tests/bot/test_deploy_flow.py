"""End to end: signed /deploy -> plan card -> approvals -> ECS on the new revision -> record."""

from __future__ import annotations

from bot.views import APPROVE_ACTION
from store.models import DeploymentState, TargetStatus
from tests.driver import BotDriver
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
    run = await bot.runtime.ctx.deploy.get(run_id)
    assert run.state is DeploymentState.SUCCEEDED
    assert {t.status for t in run.targets} == {TargetStatus.HEALTHY}
    final = slack.of("chat.update")[-1]
    assert "✅ Production deployment successful" in str(final["blocks"])
    assert "Approved by <@UAPPROVER1>, <@ULEAD1>" in str(final["blocks"])
