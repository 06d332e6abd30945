"""A failure in a deploy's thread reads as a person says it (issue 16): no stage ids such as
`health_check`, no service named twice, and "1 attempt" in the singular."""

from __future__ import annotations

import pytest

from bot.deploy.views import APPROVE_ACTION
from pipeline.kernel.config import Config
from store.deploy.models import DeploymentState
from tests.conftest import config_dict
from tests.driver import BotDriver, plan_cards, run_id_of, thread
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack


@pytest.fixture
def config(health: FakeHealth) -> Config:
    data = config_dict(health)
    data["environments"]["production"]["health"] = {"retries": 1, "interval": "1s"}
    return Config.model_validate(data)


async def test_a_failed_health_check_is_said_once_in_words_with_one_attempt_singular(
    bot: BotDriver, slack: FakeSlack, health: FakeHealth, world: EcsWorld
) -> None:
    health.status_for = lambda service, path: (
        503 if world.version("production", service) == "v1.3.0" and path == "/health" else 200
    )
    await bot.command("production api-gateway", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[-1])

    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2")

    assert (await bot.runtime.runs.get(run_id)).state is DeploymentState.ROLLED_BACK
    said = "\n".join(thread(slack))
    assert "❌ `api-gateway` failed its health check `/health` after 1 attempt (" in said
    assert "health_check" not in said
    assert "1 attempts" not in said
