"""`/deploy status <id>` shows the runbook's deployment record; `/deploy history` lists runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.deploy.status import record_text
from bot.deploy.views import history_text
from commands.deploy.replies import History, Record
from store.deploy.models import Deployment, DeploymentId, DeploymentState, RunKind, Target
from tests.driver import BotDriver
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack


def _record(reply: dict[str, object]) -> dict[str, object]:
    body = reply["body"]
    text = str(body["text"]) if isinstance(body, dict) else str(body)
    return dict(json.loads(text.split("```", 2)[1]))


async def _deploy_staging(bot: BotDriver, slack: FakeSlack) -> str:
    await bot.command("staging auth-svc v1.4.0", user="UDEV")
    runs = await bot.runtime.deploy.history("staging")
    return runs[0].id


async def test_status_shows_the_seed_deployment_record(bot: BotDriver, slack: FakeSlack) -> None:
    run_id = await _deploy_staging(bot, slack)

    record = _record(await bot.command(f"status {run_id} --json"))

    assert record["deployment_id"] == run_id
    assert record["version"] == "v1.4.0"
    assert record["environment"] == "staging"
    assert record["status"] == "success"
    assert record["triggered_by"] == "UDEV"
    assert record["services_deployed"] == ["auth-svc"]
    assert record["health_checks"] == {"auth_svc": "healthy"}
    assert record["rollback_available"] is True
    assert record["rollback_window_minutes"] == 60
    assert str(record["rollback_deadline"]).endswith("Z")


def _text(reply: dict[str, object]) -> str:
    body = reply["body"]
    assert isinstance(body, dict)
    assert body["response_type"] == "ephemeral"
    return str(body["text"])


async def test_status_summarises_state_people_times_versions_outcomes_and_window(
    bot: BotDriver, slack: FakeSlack
) -> None:
    run_id = await _deploy_staging(bot, slack)

    said = _text(await bot.command(f"status {run_id}"))

    lines = said.splitlines()
    assert lines[0] == f"*Deployment `{run_id}`* to `staging`: succeeded"
    assert lines[1].startswith("Requested by <@UDEV> <!date^1795338000^")
    assert "· no approval needed" in lines[1]
    assert "• `auth-svc` v1.3.0 → v1.4.0: ✅ healthy" in lines
    assert "↩️ Rollback available until 10:00 UTC" in said
    assert lines[-1] == f"The whole record: `/deploy status {run_id} --json`"
    assert "```" not in said
    assert '"deployment_id"' not in said
    assert len(lines) <= 8


async def test_status_of_a_rolled_back_deploy_says_why_and_where_each_service_ended(
    bot: BotDriver, slack: FakeSlack, health: FakeHealth, world: EcsWorld
) -> None:
    health.status_for = lambda service, path: (
        503 if service == "auth-svc" and world.version("staging", service) == "v1.4.0" else 200
    )
    await bot.command("staging auth-svc,market-svc v1.4.0", user="UDEV")
    run_id = (await bot.runtime.deploy.history("staging"))[0].id

    said = _text(await bot.command(f"status {run_id}"))

    assert f"*Deployment `{run_id}`* to `staging`: rolled back" in said
    assert "• `auth-svc` v1.3.0 → v1.4.0: ↩️ rolled back" in said
    assert "• `market-svc` v1.3.0 → v1.4.0: ↩️ rolled back" in said
    assert "Why: `auth-svc` failed its health check `/health` after 5 attempts" in said


def test_status_of_a_200_service_deploy_stays_short() -> None:
    """One line per service up to a dozen, then how many more: never a wall of text."""
    at = datetime(2026, 11, 22, 9, tzinfo=UTC)
    run = Deployment(
        id=DeploymentId("1795338000-abcdef"),
        environment="production",
        requested_by="UDEV",
        version="v1.3.0",
        state=DeploymentState.RUNNING,
        stage="rollout",
        required_approvals=2,
        channel_id="CDEPLOYS",
        message_ts="1.2",
        created_at=at,
        updated_at=at,
        approval_due_at=None,
        started_at=at,
        finished_at=None,
        error=None,
        targets=tuple(
            Target(service=f"service-{i:03d}", current_version="v1.2.0", target_version="v1.3.0")
            for i in range(200)
        ),
    )

    said = record_text(Record(run, at, 60))

    assert "… and 188 more services" in said
    assert len(said.splitlines()) <= 20


async def test_status_of_an_unknown_id_says_where_to_look(bot: BotDriver) -> None:
    reply = await bot.command("status 123-nope")

    assert "No deployment has the id `123-nope`" in str(reply["body"])
    assert "/deploy history" in str(reply["body"])


async def test_history_lists_recent_runs_newest_first_and_filters_by_environment(
    bot: BotDriver, slack: FakeSlack
) -> None:
    first = await _deploy_staging(bot, slack)
    bot.clock.advance(60)
    await bot.command("staging market-svc v1.5.0", user="UDEV")
    second = (await bot.runtime.deploy.history("staging"))[0].id

    staging = str((await bot.command("history staging"))["body"])
    production = str((await bot.command("history production"))["body"])

    assert staging.index(second) < staging.index(first)
    assert "No deployments in `production` yet." in production


def _run(i: int, **fields: object) -> Deployment:
    at = datetime(2026, 11, 22, 9, i, tzinfo=UTC)
    values: dict[str, object] = {
        "id": DeploymentId(f"1795338000-{i:06d}"),
        "environment": "production",
        "requested_by": "UDEV",
        "version": "v1.3.0",
        "state": DeploymentState.SUCCEEDED,
        "stage": None,
        "required_approvals": 0,
        "channel_id": "CDEPLOYS",
        "message_ts": "1.2",
        "created_at": at,
        "updated_at": at,
        "approval_due_at": None,
        "started_at": at,
        "finished_at": at,
        "error": None,
        "targets": (
            Target(service="auth-svc", current_version="v1.2.0", target_version="v1.3.0"),
            Target(service="market-svc", current_version="v1.2.0", target_version="v1.3.0"),
        ),
    }
    values.update(fields)
    return Deployment.model_validate(values)


def test_history_clips_a_long_reason_so_all_ten_entries_show() -> None:
    long_reason = "login errors after the release " * 90
    rollback = _run(
        0,
        kind=RunKind.ROLLBACK,
        reason=long_reason,
        targets=(Target(service="auth-svc", current_version="v1.3.0", target_version="v1.2.0"),),
    )
    runs = (rollback, *(_run(i) for i in range(1, 10)))

    said = history_text(History(runs, "production"))

    assert "more" not in said.splitlines()[-1]
    for run in runs:
        assert f"`{run.id}`" in said
    assert "login errors after the release login errors" in said
    assert said.count("login errors after the release") < 10


def test_history_names_the_service_of_a_one_service_deploy() -> None:
    one = _run(
        1,
        targets=(Target(service="auth-svc", current_version="v1.2.0", target_version="v1.3.0"),),
    )

    said = history_text(History((one, _run(2)), None))

    assert f"`{one.id}` production: `auth-svc` to v1.3.0, succeeded" in said
    assert "2 services to v1.3.0, succeeded" in said
    assert "service(s)" not in said
