"""The audit log: every `/deploy` command and every click, with who, what and how it ended."""

from __future__ import annotations

import pytest

from bot.deploy.views import APPROVE_ACTION, REJECT_ACTION
from store.audit import AuditEntry
from tests.driver import BotDriver, plan_cards, run_id_of
from tests.fakes.clock import FakeClock
from tests.fakes.ecs import put_version
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.slack_api import FakeSlack


async def _audit(bot: BotDriver) -> list[AuditEntry]:
    return list(reversed(await bot.runtime.audit.recent()))


@pytest.mark.parametrize(
    ("text", "outcome"),
    [
        ("prod api-gateway", "refused: No environment is called `prod`"),
        ("", "help"),
        ("help", "help"),
        ("history", "ok"),
        ("status 1-nope", "refused: No deployment has the id `1-nope`"),
        ("production api-gateway", "planned"),
    ],
)
async def test_every_command_is_audited_with_actor_action_and_outcome(
    bot: BotDriver, clock: FakeClock, text: str, outcome: str
) -> None:
    await bot.command(text, user="UDEV", channel="CDEPLOYS")

    [entry] = await _audit(bot)
    assert entry.actor == "UDEV"
    assert entry.action == f"/deploy {text}".strip()
    assert entry.outcome.startswith(outcome)
    assert entry.channel_id == "CDEPLOYS"
    assert entry.at == clock.now()


async def test_a_planned_deploy_is_audited_with_its_deployment_id(
    bot: BotDriver, slack: FakeSlack
) -> None:
    await bot.command("production api-gateway", user="UDEV")

    [entry] = await _audit(bot)
    assert entry.detail == run_id_of(plan_cards(slack)[0])


async def test_a_deploy_refused_after_the_ack_is_audited(bot: BotDriver, world: EcsWorld) -> None:
    put_version(world, "production", "api-gateway", "v1.3.0")

    await bot.command("production api-gateway", user="UDEV")

    [entry] = await _audit(bot)
    assert entry.outcome.startswith("refused: Nothing to deploy")


async def test_every_click_is_audited_with_actor_action_and_outcome(
    bot: BotDriver, slack: FakeSlack
) -> None:
    await bot.command("production api-gateway", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[0])

    await bot.click(APPROVE_ACTION, run_id, user="UINTRUDER")
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await bot.click(REJECT_ACTION, run_id, user="UAPPROVER2")

    clicks = [(e.actor, e.action, e.outcome) for e in (await _audit(bot))[1:]]
    assert [(actor, action) for actor, action, _ in clicks] == [
        ("UINTRUDER", f"click approve {run_id}"),
        ("UAPPROVER1", f"click approve {run_id}"),
        ("UAPPROVER1", f"click approve {run_id}"),
        ("UAPPROVER2", f"click reject {run_id}"),
    ]
    outcomes = [outcome for _, _, outcome in clicks]
    assert outcomes[0].startswith("refused: Only approvers of `production`")
    assert outcomes[1] == "awaiting_approval"
    assert outcomes[2].startswith("refused: You already decided")
    assert outcomes[3] == "rejected"
