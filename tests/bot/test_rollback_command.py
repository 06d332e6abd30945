"""`/rollback` is declared in the manifest; until it is built it answers, changes nothing."""

from __future__ import annotations

from tests.driver import BotDriver
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.slack_api import FakeSlack


async def test_rollback_explains_how_to_deploy_the_previous_version_and_changes_nothing(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld
) -> None:
    before = world.task_definition("production", "auth-svc")

    reply = await bot.command("production auth-svc", command="/rollback", user="UONCALL")

    assert reply["status"] == 200
    assert "`/rollback` is not available in this version yet" in str(reply["body"])
    assert "/deploy <environment> <service> <previous-version>" in str(reply["body"])
    assert world.task_definition("production", "auth-svc") == before
    assert slack.of("chat.postMessage") == []
    audit = await bot.runtime.audit.recent()
    assert [(a.actor, a.action) for a in audit] == [("UONCALL", "/rollback production auth-svc")]
