"""Issue 16's acceptance: the README tour and on-call's bad night (a failed release, its
automatic rollback, a P1, a rollback from the war room, the resolution) through signed
requests, the strict local Slack, moto and the injected clock. Every version of every message
is checked as it was shown: no card contradicting itself, every person a mention, failures told
to the channel with the requester named, threads within the noise budget, no raw ids or JSON,
and no traceback in the bot's log."""

from __future__ import annotations

from typing import Any

import pytest

from bot.deploy.views import APPROVE_ACTION
from bot.incident.views import SUSPECT_ROLLBACK_ACTIONS
from bot.rollback.views import ROLLBACK_CONFIRM_ACTION
from pipeline.kernel.config import Config
from store.deploy.models import DeploymentState, RunKind
from tests.conftest import config_dict
from tests.driver import BotDriver, plan_cards, run_id_of
from tests.fakes.clock import FakeClock
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack
from tests.transcript_checks import Recorder, Version, contradictions, problems

ONCALL = "UONCALL"
REQUESTER = "UDEV"
OUTSIDER = "UOUTSIDER"
THREAD_BUDGET = 15
WINDOW_AND_A_MINUTE_S = 61 * 60.0
NAMES = ["Alice Archer", "Bob Brennan", "Carol Chen", "Casey Commander", "Dana Diaz"]


@pytest.fixture
def config(health: FakeHealth) -> Config:
    data = config_dict(health)
    data["environments"]["production"]["rollbackers"] = [ONCALL, "S0LEADS"]
    data["incidents"]["severities"] = {
        "p1": {
            "description": "Service down, all users affected",
            "response_time": "Immediate",
            "update_every": "15m",
            "responders": [ONCALL],
        }
    }
    return Config.model_validate(data)


@pytest.fixture
def recorder(slack: FakeSlack) -> Recorder:
    return Recorder(slack)


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.exc_info is not None or "Traceback" in r.getMessage()
    ]


async def approve_production(bot: BotDriver, slack: FakeSlack, services: str) -> str:
    await bot.command(f"production {services}", user=REQUESTER)
    run_id = run_id_of(plan_cards(slack)[-1])
    await bot.click(APPROVE_ACTION, run_id, user=OUTSIDER)
    await bot.click(APPROVE_ACTION, run_id, user=REQUESTER)
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2")
    return run_id


def assert_heard(recorder: Recorder, slack: FakeSlack) -> None:
    """Every rule of the acceptance, over everything recorded so far."""
    assert problems(recorder, names=NAMES) == []
    for card in {v.ts: v for v in recorder.cards() if v.user == slack.workspace.bot_user}:
        replies = {v.ts for v in recorder.replies_to(card)}
        assert len(replies) <= THREAD_BUDGET, f"{len(replies)} replies to {card}"


def loud_about(recorder: Recorder, run_id: str) -> list[Version]:
    return [v for v in recorder.loud() if run_id in v.text and "FAILED" in v.text]


async def test_the_checks_catch_a_card_that_contradicts_itself() -> None:
    """The checker itself can fail: a crafted card that is both successful and rolled back."""
    bad = Version(
        channel="C1",
        ts="1.1",
        thread_ts=None,
        broadcast=False,
        text="✅ Production deployment successful",
        blocks=[
            {"type": "section", "text": {"type": "mrkdwn", "text": "Rolled back by <@U1>"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "Rollback available for 1h"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "rollback window closed"}},
        ],
        user="UBOT",
    )

    found = contradictions(bad)

    assert "'deployment successful' with 'rolled back'" in found
    assert "'Rollback available' with 'rollback window closed'" in found


async def test_the_checks_catch_a_raw_id_a_bare_name_and_raw_json(
    slack: FakeSlack, recorder: Recorder
) -> None:
    ws = slack.workspace
    ws.post("CDEPLOYS", user=ws.bot_user, text="promoted: by U00CAROL")
    ws.post("CDEPLOYS", user=ws.bot_user, text="Approved by Carol Chen")
    ws.post("CDEPLOYS", user=ws.bot_user, text='{"state": "failed"}')

    found = problems(recorder, names=NAMES)

    assert any("U00CAROL" in p for p in found)
    assert any("Carol Chen" in p for p in found)
    assert any("raw JSON" in p for p in found)


async def test_the_readme_tour_says_everything_truly_and_names_everyone(
    bot: BotDriver,
    slack: FakeSlack,
    clock: FakeClock,
    world: EcsWorld,
    health: FakeHealth,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    health.status_for = lambda service, path: (
        503
        if path.startswith("/staging") and world.version("staging", service) == "v1.4.0"
        else 200
    )

    deploy_id = await approve_production(bot, slack, "all")
    await bot.command("staging auth-svc v1.4.0", user=REQUESTER)
    for text in ("history production", f"status {deploy_id}", "status production", "help"):
        await bot.command(text, user=REQUESTER)
    await bot.command("production auth-svc login errors", command="/rollback", user=ONCALL)
    question = slack.responses[-1]
    [confirm] = [
        e["value"]
        for b in question["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == ROLLBACK_CONFIRM_ACTION
    ]
    await bot.click(ROLLBACK_CONFIRM_ACTION, confirm, user=ONCALL)
    clock.advance(WINDOW_AND_A_MINUTE_S)
    await bot.runtime.timers.run_due()
    await bot.settle()

    assert (await bot.runtime.runs.get(deploy_id)).state is DeploymentState.SUCCEEDED
    card = [v for v in recorder.cards() if deploy_id in v.all_text][-1]
    assert "partly rolled back" in card.text
    assert "rollback window closed" in card.all_text
    (staging,) = await bot.runtime.deploy.history("staging")
    assert staging.state is DeploymentState.ROLLED_BACK
    assert loud_about(recorder, staging.id)
    assert all(f"<@{REQUESTER}>" in v.text for v in loud_about(recorder, staging.id))
    assert world.version("production", "auth-svc") == "v1.2.0"
    assert_heard(recorder, slack)
    assert tracebacks(caplog) == []


def suspect_buttons(alert: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e
        for b in alert.get("blocks") or []
        if b["type"] == "actions"
        for e in b["elements"]
        if SUSPECT_ROLLBACK_ACTIONS.match(e["action_id"])
    ]


async def test_the_bad_night_says_everything_truly_and_reaches_who_must_know(
    bot: BotDriver,
    slack: FakeSlack,
    world: EcsWorld,
    health: FakeHealth,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    earlier = await approve_production(bot, slack, "api-gateway")
    health.status_for = lambda service, path: (
        503 if service == "market-svc" and world.version("production", service) == "v1.3.0" else 200
    )

    release = await approve_production(bot, slack, "auth-svc,market-svc")
    await bot.command("p1 logins failing", command="/incident", user=ONCALL, channel="CGEN")
    (incident,) = await bot.runtime.incident.list_open()
    alert = next(
        c
        for c in slack.of("chat.postMessage")
        if c["channel"] == incident.channel_id and "INCIDENT" in c["text"]
    )
    [suspect] = [b for b in suspect_buttons(alert) if b["text"]["text"].endswith(earlier)]
    for who in (OUTSIDER, ONCALL):
        await bot.click(
            suspect["action_id"], suspect["value"], user=who, channel=incident.channel_id
        )
    await bot.command(
        "resolve rolled api-gateway back",
        command="/incident",
        user=ONCALL,
        channel=incident.channel_id,
    )

    assert (await bot.runtime.runs.get(release)).state is DeploymentState.ROLLED_BACK
    assert world.version("production", "market-svc") == "v1.2.0"
    assert world.version("production", "api-gateway") == "v1.2.0"
    [loud] = loud_about(recorder, release)
    assert loud.text.startswith(f"<@{REQUESTER}>")
    rollbacks = [r for r in await bot.runtime.deploy.history(None) if r.kind is RunKind.ROLLBACK]
    assert [(r.reverts, r.state) for r in rollbacks] == [(earlier, DeploymentState.SUCCEEDED)]
    assert not await bot.runtime.incident.list_open()
    assert_heard(recorder, slack)
    assert tracebacks(caplog) == []
