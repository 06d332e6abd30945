"""The noise budget of a deploy's thread (issue 16): progress grouped per stage, not per service
per step, counted through the strict local Slack; a repeated runbook block is posted once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bot.deploy.views import APPROVE_ACTION
from bot.settings import Settings
from pipeline.kernel.config import Config
from sandbox.slack import LocalSlack
from store.deploy.models import DeploymentState
from tests.conftest import APPROVERS
from tests.driver import BotDriver, plan_cards, run_id_of, thread
from tests.fakes.clock import FakeClock
from tests.fakes.ecs import FakeEcs
from tests.fakes.ecs_world import REGION, REPO
from tests.fakes.health import FakeHealth

EIGHT = [
    "api-gateway",
    "auth-svc",
    "market-svc",
    "skillpod-svc",
    "cockpit-svc",
    "billing-svc",
    "notification-svc",
    "audit-svc",
]
MANY = [f"service-{i:03d}" for i in range(200)]

BotOf = Callable[[list[str]], Awaitable[BotDriver]]


def _config(health: FakeHealth, services: list[str]) -> Config:
    return Config.model_validate(
        {
            "environments": {
                "staging": {"cluster": "skillancer-staging", "region": REGION, "ecr_check": False},
                "production": {
                    "cluster": "skillancer-production",
                    "region": REGION,
                    "required_approvals": 2,
                    "approvers": APPROVERS,
                    "promote_from": "staging",
                    "ecr_check": False,
                    "health": {"retries": 1, "interval": "1s", "paths": ["/health"]},
                    "rollout": {"max_parallel": 32},
                },
            },
            "services": {
                s: {"image": f"{REPO}/{s}", "health_url": {"production": health.url(s)}}
                for s in services
            },
        }
    )


@pytest.fixture
async def bot_of(
    settings: Settings, health: FakeHealth, clock: FakeClock, slack: LocalSlack
) -> AsyncIterator[BotOf]:
    drivers: list[BotDriver] = []

    async def make(services: list[str]) -> BotDriver:
        ecs = FakeEcs()
        for service in services:
            ecs.add_service("staging", service, "v1.3.0")
            ecs.add_service("production", service, "v1.2.0")
        driver = BotDriver(
            settings=settings, config=_config(health, services), clock=clock, ecs=ecs, slack=slack
        )
        await driver.start()
        drivers.append(driver)
        return driver

    yield make
    for driver in drivers:
        await driver.stop()


async def _deploy_production(bot: BotDriver, slack: LocalSlack) -> str:
    await bot.command("production all", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[0])
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2")
    return run_id


async def test_an_eight_service_production_deploy_posts_at_most_15_thread_replies(
    bot_of: BotOf, slack: LocalSlack
) -> None:
    bot = await bot_of(EIGHT)

    run_id = await _deploy_production(bot, slack)

    assert (await bot.runtime.runs.get(run_id)).state is DeploymentState.SUCCEEDED
    replies = thread(slack)
    assert len(replies) <= 15, replies
    said = "\n".join(replies)
    for service in EIGHT:
        assert f"`{service}`" in said, f"{service} is never named in the thread"


async def test_a_200_service_production_deploy_posts_at_most_30_thread_replies(
    bot_of: BotOf, slack: LocalSlack
) -> None:
    bot = await bot_of(MANY)

    run_id = await _deploy_production(bot, slack)

    assert (await bot.runtime.runs.get(run_id)).state is DeploymentState.SUCCEEDED
    replies = thread(slack)
    assert len(replies) <= 30, [r[:80] for r in replies]
    assert any("200/200" in r for r in replies), "the thread never says all 200 are done"


async def test_a_rolled_back_eight_service_deploy_posts_one_rollback_notice_for_all(
    bot_of: BotOf, slack: LocalSlack, health: FakeHealth
) -> None:
    """Seed 001's runbook block ("Investigating root cause...") once, naming every service."""
    bot = await bot_of(EIGHT)
    failed: list[str] = []

    def new_audit_fails_once(service: str, path: str) -> int:
        if service == "audit-svc" and not failed:
            failed.append(service)
            return 503
        return 200

    health.status_for = new_audit_fails_once

    run_id = await _deploy_production(bot, slack)

    run = await bot.runtime.runs.get(run_id)
    assert run.state is DeploymentState.ROLLED_BACK
    replies = thread(slack)
    assert len(replies) <= 15, replies
    notices = [r for r in replies if "Deployment Rollback" in r]
    assert len(notices) == 1
    assert notices[0].count("Investigating root cause. Updates to follow.") == 1
    for service in EIGHT:
        assert service in notices[0]
    failure = next(r for r in replies if r.startswith("❌"))
    assert "`audit-svc`" in failure
    assert "503" in failure
