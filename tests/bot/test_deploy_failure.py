"""Failed rollouts: every changed service goes back, is health-checked, and people are told."""

from __future__ import annotations

import pytest

from bot.deploy.views import APPROVE_ACTION
from store.deploy.models import DeploymentState, TargetStatus
from tests.conftest import STAGING_PATH, BotFactory
from tests.driver import BotDriver, last_card, plan_cards, run_id_of, thread
from tests.fakes.clock import FakeClock
from tests.fakes.ecs import FakeEcs
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack


def fail_new_version(
    world: EcsWorld, env: str, version: str, *, services: tuple[str, ...] | None = None
):
    """A health endpoint that answers 503 while `env` runs `version` of a service."""

    def status_for(service: str, path: str) -> int:
        broken = services is None or service in services
        return 503 if broken and world.version(env, service) == version else 200

    return status_for


async def _approved_production(bot: BotDriver, slack: FakeSlack, services: str) -> str:
    await bot.command(f"production {services}", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[-1])
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2")
    return run_id


async def test_a_failing_health_check_rolls_every_changed_service_back(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld, health: FakeHealth
) -> None:
    before = {s: world.task_definition("production", s) for s in ("api-gateway", "auth-svc")}
    health.status_for = fail_new_version(world, "production", "v1.3.0", services=("auth-svc",))

    run_id = await _approved_production(bot, slack, "api-gateway,auth-svc")

    run = await bot.runtime.runs.get(run_id)
    assert run.state is DeploymentState.ROLLED_BACK
    assert run.error is not None
    assert "`auth-svc` failed its health check `/health` after 10 attempts" in run.error
    for service in ("api-gateway", "auth-svc"):
        assert world.task_definition("production", service) == before[service]
        assert world.version("production", service) == "v1.2.0"
    assert {t.service: t.previous_task_def for t in run.targets} == before
    assert {t.status for t in run.targets} == {TargetStatus.ROLLED_BACK}


async def test_services_rolled_back_are_health_checked_again(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld, health: FakeHealth
) -> None:
    health.status_for = fail_new_version(world, "production", "v1.3.0", services=("auth-svc",))

    run_id = await _approved_production(bot, slack, "api-gateway,auth-svc")

    production = [(s, status) for s, path, status in health.hits if not path.startswith("/staging")]
    auth_hits = [status for service, status in production if service == "auth-svc"]
    assert auth_hits == [503] * 10 + [200] * 3
    api_hits = [status for service, status in production if service == "api-gateway"]
    assert api_hits == [200] * 6
    run = await bot.runtime.runs.get(run_id)
    assert all("`/api/v1/status` 200" in (t.detail or "") for t in run.targets)


async def test_a_rolled_back_run_uses_the_runbook_wording_on_the_card_and_in_the_thread(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld, health: FakeHealth
) -> None:
    health.status_for = fail_new_version(world, "production", "v1.3.0")

    run_id = await _approved_production(bot, slack, "api-gateway")

    card = last_card(slack)
    assert "🚨 Production deployment FAILED" in card
    assert f"Deployment ID: {run_id}" in card
    assert "Automatic rollback completed" in card
    notices = [t for t in thread(slack) if t.startswith("🔄 *Deployment Rollback*")]
    assert len(notices) == 1
    assert "*Service*: api-gateway" in notices[0]
    assert "*From Version*: v1.3.0" in notices[0]
    assert "*To Version*: v1.2.0" in notices[0]
    assert "Investigating root cause. Updates to follow." in notices[0]


async def test_a_rollback_whose_health_check_fails_too_ends_loudly_with_the_manual_command(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld, health: FakeHealth
) -> None:
    previous = world.task_definition("production", "api-gateway")
    health.status_for = lambda service, path: 200 if path.startswith(STAGING_PATH) else 503

    run_id = await _approved_production(bot, slack, "api-gateway")

    run = await bot.runtime.runs.get(run_id)
    assert run.state is DeploymentState.ROLLBACK_FAILED
    assert run.targets[0].status is TargetStatus.ROLLBACK_FAILED
    card = last_card(slack)
    assert "🚨 Production deployment FAILED" in card
    assert "⚠️ ACTION REQUIRED: Manual investigation needed" in card
    alarm = next(
        c for c in slack.of("chat.postMessage") if str(c.get("text", "")).startswith("<!channel>")
    )
    assert alarm["reply_broadcast"] in (True, "1", "true", "True")
    assert (
        "aws ecs update-service --region us-east-1 --cluster skillancer-production "
        f"--service api-gateway --task-definition {previous}"
    ) in alarm["text"]


@pytest.mark.parametrize(
    ("command", "approvals", "waits"),
    [
        ("production api-gateway", 2, [30.0] * 9),
        ("staging api-gateway v1.4.0", 0, [15.0] * 4),
    ],
)
async def test_health_retries_follow_the_environments_retries_and_interval(
    bot: BotDriver,
    slack: FakeSlack,
    world: EcsWorld,
    health: FakeHealth,
    clock: FakeClock,
    command: str,
    approvals: int,
    waits: list[float],
) -> None:
    env = command.split()[0]
    version = "v1.3.0" if env == "production" else "v1.4.0"
    health.status_for = fail_new_version(world, env, version)

    await bot.command(command, user="UDEV")
    run_id = run_id_of(plan_cards(slack)[-1])
    for user in ("UAPPROVER1", "UAPPROVER2")[:approvals]:
        await bot.click(APPROVE_ACTION, run_id, user=user)

    assert clock.slept == waits
    run = await bot.runtime.runs.get(run_id)
    assert run.state is DeploymentState.ROLLED_BACK


async def test_a_service_that_never_reaches_steady_state_fails_at_the_deadline(
    make_bot: BotFactory, fake_ecs: FakeEcs, slack: FakeSlack, clock: FakeClock
) -> None:
    fake_ecs.stuck_versions.add("v1.4.0")
    previous = fake_ecs.task_definition("staging", "api-gateway")
    bot = await make_bot(fake_ecs)

    await bot.command("staging api-gateway v1.4.0", user="UDEV")

    run = await bot.runtime.runs.get(run_id_of(plan_cards(slack)[0]))
    assert run.state is DeploymentState.ROLLED_BACK
    assert run.error == (
        "`api-gateway` did not reach steady state within 10m "
        "(1/2 tasks running, 2 deployments active)."
    )
    assert clock.slept == [10.0] * 60
    assert fake_ecs.task_definition("staging", "api-gateway") == previous
    assert "did not reach steady state within 10m" in last_card(slack)


async def test_a_partly_failed_rollback_still_announces_the_services_it_restored(
    bot: BotDriver, slack: FakeSlack, world: EcsWorld, health: FakeHealth
) -> None:
    health.status_for = lambda service, path: (
        503 if service == "auth-svc" and not path.startswith(STAGING_PATH) else 200
    )

    run_id = await _approved_production(bot, slack, "api-gateway,auth-svc")

    run = await bot.runtime.runs.get(run_id)
    assert run.state is DeploymentState.ROLLBACK_FAILED
    notices = [t for t in thread(slack) if t.startswith("🔄 *Deployment Rollback*")]
    assert len(notices) == 1
    assert "*Service*: api-gateway" in notices[0]
    alarm = next(t for t in thread(slack) if t.startswith("<!channel>"))
    assert "--service auth-svc" in alarm
    assert "--service api-gateway" not in alarm
