"""`/deploy status <id>` shows the runbook's deployment record; `/deploy history` lists runs."""

from __future__ import annotations

import json

from tests.driver import BotDriver
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

    record = _record(await bot.command(f"status {run_id}"))

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
