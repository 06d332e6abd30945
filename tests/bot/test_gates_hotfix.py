"""`--skip-staging "<reason>"`: a hotfix to production while staging is unhealthy skips the
promotion health check, needs a reason, and says so on the card and in the record. Signed
requests, the strict local Slack, moto ECS and local health servers."""

from __future__ import annotations

import json

import pytest

from bot.deploy.views import APPROVE_ACTION
from store.deploy.models import DeploymentState
from tests.conftest import STAGING_PATH
from tests.driver import BotDriver, plan_cards, run_id_of
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack

REASON = "CVE-2026-0001 token bypass"


@pytest.fixture
def staging_down(health: FakeHealth) -> None:
    health.status_for = lambda service, path: 503 if path.startswith(STAGING_PATH) else 200


@pytest.mark.usefixtures("staging_down")
async def test_a_hotfix_skips_the_unhealthy_staging_and_is_marked_on_the_card_and_record(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld, health: FakeHealth
) -> None:
    await bot.command(f'production auth-svc v1.3.0 --skip-staging "{REASON}"', user="UDEV")
    card = plan_cards(slack)[-1]
    run_id = run_id_of(card)
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2")

    run = await bot.runtime.runs.get(run_id)
    reply = await bot.command(f"status {run_id} --json")
    record = json.loads(str(reply["body"]["text"]).split("```", 2)[1])
    assert f"⏩ *Hotfix*: staging skipped · {REASON}" in str(card["blocks"])
    assert run.state is DeploymentState.SUCCEEDED
    assert run.skip_staging == REASON
    assert world.version("production", "auth-svc") == "v1.3.0"
    assert not any(path.startswith(STAGING_PATH) for _, path, _ in health.hits)
    assert record["skip_staging"] == REASON


@pytest.mark.usefixtures("staging_down")
async def test_without_the_flag_an_unhealthy_staging_refuses_the_promotion(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld
) -> None:
    await bot.command("production auth-svc v1.3.0", user="UDEV")

    refusal = slack.responses[-1]
    assert refusal["response_type"] == "ephemeral"
    assert "Pre-flight check `source health` failed for `auth-svc`" in refusal["text"]
    assert "`staging` is not healthy: `/health` 503" in refusal["text"]
    assert plan_cards(slack) == []
    assert world.version("production", "auth-svc") == "v1.2.0"


@pytest.mark.parametrize(
    "text",
    ["production auth-svc v1.3.0 --skip-staging", 'production auth-svc v1.3.0 --skip-staging ""'],
)
async def test_a_hotfix_without_a_reason_is_refused(
    bot: BotDriver, slack: FakeSlack, text: str
) -> None:
    reply = await bot.command(text, user="UDEV")

    assert reply["body"]["response_type"] == "ephemeral"
    assert reply["body"]["text"].startswith(
        '`--skip-staging` needs a reason: `--skip-staging "what is on fire"`.'
    )
    assert plan_cards(slack) == []
