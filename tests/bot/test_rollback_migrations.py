"""`/rollback` of a deploy that ran migrations: the database does not go back with the code
(seed 002: "Database errors: DO NOT rollback"), so the requester is always asked first, with
that warning, even with `-y` or the card's Roll back button. Signed requests, the strict local
Slack, moto (ECS, RDS) and the injected clock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bot.deploy.views import APPROVE_ACTION, WINDOW_ROLLBACK_ACTION
from bot.rollback.views import ROLLBACK_CANCEL_ACTION, ROLLBACK_CONFIRM_ACTION
from pipeline.kernel.config import Config
from store.deploy.models import Deployment, DeploymentState, RunKind
from tests.conftest import config_dict
from tests.driver import BotDriver, plan_cards, run_id_of
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.gates_world import GatesWorld, HookedClock, finish_tasks, tasks_run_until_ended
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack

CLUSTER = "skillancer-production"
ONCALL = "UONCALL"
WARNING = "The database will not go back with the code."


@pytest.fixture
def clock() -> HookedClock:
    fake = HookedClock()
    fake.on_sleep = lambda seconds: finish_tasks(CLUSTER, 0)
    return fake


@pytest.fixture(autouse=True)
def _tasks_end_when_told() -> Iterator[None]:
    with tasks_run_until_ended():
        yield


@pytest.fixture
def config(health: FakeHealth, world: EcsWorld) -> Config:
    gates = GatesWorld()
    gates.database("skillancer-prod-db")
    data = config_dict(health)
    for env in data["environments"].values():
        env["network"] = {"subnets": [gates.subnet], "security_groups": [gates.security_group]}
    prod = data["environments"]["production"]
    prod["database"] = {"instance": "skillancer-prod-db"}
    prod["rollbackers"] = [ONCALL]
    data["services"]["auth-svc"]["migration"] = {"command": ["pnpm", "prisma", "migrate"]}
    return Config.model_validate(data)


async def deploy_production(bot: BotDriver, slack: FakeSlack, services: str) -> Deployment:
    await bot.command(f"production {services}", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[-1])
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2")
    run = await bot.runtime.runs.get(run_id)
    assert run.state is DeploymentState.SUCCEEDED
    return run


async def rollback(bot: BotDriver, text: str) -> dict[str, Any]:
    return await bot.command(text, command="/rollback", user=ONCALL)


async def latest_rollback(bot: BotDriver) -> Deployment:
    runs = [r for r in await bot.runtime.deploy.history(None) if r.kind is RunKind.ROLLBACK]
    return runs[0]


def question(slack: FakeSlack) -> dict[str, Any]:
    """The last private reply, with its buttons' texts."""
    return slack.responses[-1]


def button_texts(message: dict[str, Any]) -> list[str]:
    return [
        e["text"]["text"]
        for b in message.get("blocks") or []
        if b["type"] == "actions"
        for e in b["elements"]
    ]


async def test_a_rollback_of_a_migrating_deploy_warns_and_waits_for_the_requester(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld
) -> None:
    deployed = await deploy_production(bot, slack, "auth-svc")

    await rollback(bot, "production auth-svc login errors")

    asked = question(slack)
    pending = await latest_rollback(bot)
    assert asked["response_type"] == "ephemeral"
    assert WARNING in str(asked["blocks"])
    assert f"deployment `{deployed.id}` ran migrations of `auth-svc`" in str(asked["blocks"])
    assert f"/deploy restore-db {deployed.id}" in str(asked["blocks"])
    assert button_texts(asked) == ["Roll back the code anyway", "Cancel"]
    assert pending.state is DeploymentState.AWAITING_APPROVAL
    assert world.version("production", "auth-svc") == "v1.3.0"


async def test_dash_y_does_not_skip_the_question_when_the_deploy_ran_migrations(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld
) -> None:
    await deploy_production(bot, slack, "auth-svc")

    await rollback(bot, "-y production auth-svc")

    pending = await latest_rollback(bot)
    assert pending.state is DeploymentState.AWAITING_APPROVAL
    assert WARNING in str(question(slack)["blocks"])
    assert "`-y` and the card's button skip this question only when no migration ran" in str(
        question(slack)["blocks"]
    )
    assert world.version("production", "auth-svc") == "v1.3.0"


async def test_confirming_rolls_the_code_back_and_the_timeline_keeps_the_warning(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld
) -> None:
    deployed = await deploy_production(bot, slack, "auth-svc")
    await rollback(bot, "-y production auth-svc")
    pending = await latest_rollback(bot)

    await bot.click(ROLLBACK_CONFIRM_ACTION, pending.id, user=ONCALL)

    run = await bot.runtime.runs.get(pending.id)
    events = await bot.runtime.deploy._deployments.events(run.id)
    assert run.state is DeploymentState.SUCCEEDED
    assert world.version("production", "auth-svc") == "v1.2.0"
    assert [e.detail for e in events if e.stage == "confirm"] == [
        f"by {ONCALL}, knowing the database stays as deployment {deployed.id} migrated it"
    ]


async def test_cancelling_the_question_changes_nothing(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld
) -> None:
    await deploy_production(bot, slack, "auth-svc")
    await rollback(bot, "-y production auth-svc")
    pending = await latest_rollback(bot)

    await bot.click(ROLLBACK_CANCEL_ACTION, pending.id, user=ONCALL)

    assert (await bot.runtime.runs.get(pending.id)).state is DeploymentState.CANCELLED
    assert world.version("production", "auth-svc") == "v1.3.0"


async def test_the_cards_roll_back_button_asks_too(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld
) -> None:
    deployed = await deploy_production(bot, slack, "auth-svc")

    await bot.click(WINDOW_ROLLBACK_ACTION, deployed.id, user=ONCALL)

    pending = await latest_rollback(bot)
    assert pending.state is DeploymentState.AWAITING_APPROVAL
    assert WARNING in str(question(slack)["blocks"])
    assert world.version("production", "auth-svc") == "v1.3.0"


async def test_a_rollback_of_a_deploy_without_migrations_still_starts_at_once_with_dash_y(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld
) -> None:
    await deploy_production(bot, slack, "market-svc")

    await rollback(bot, "-y production market-svc")

    assert (await latest_rollback(bot)).state is DeploymentState.SUCCEEDED
    assert world.version("production", "market-svc") == "v1.2.0"
    assert not any(WARNING in str(r.get("blocks")) for r in slack.responses)


async def test_after_the_window_the_question_comes_first_then_the_plan_card_needs_approvals(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld
) -> None:
    await deploy_production(bot, slack, "auth-svc")
    bot.clock.advance(61 * 60)
    await rollback(bot, "-y production auth-svc")
    pending = await latest_rollback(bot)
    asked = str(question(slack)["blocks"])

    await bot.click(ROLLBACK_CONFIRM_ACTION, pending.id, user=ONCALL)
    planned = await bot.runtime.runs.get(pending.id)
    [card] = [c for c in plan_cards(slack) if run_id_of(c) == pending.id]
    await bot.click(APPROVE_ACTION, pending.id, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, pending.id, user="UAPPROVER2")

    assert WARNING in asked
    assert "After you confirm, a plan card asks for 2 approvals" in asked
    assert planned.state is DeploymentState.AWAITING_APPROVAL
    assert (planned.required_approvals, planned.message_ts is not None) == (2, True)
    # The approvers see what the requester was told: the database stays migrated.
    assert WARNING in str(card["blocks"])
    assert "/deploy restore-db" in str(card["blocks"])
    assert (await bot.runtime.runs.get(pending.id)).state is DeploymentState.SUCCEEDED
    assert world.version("production", "auth-svc") == "v1.2.0"
