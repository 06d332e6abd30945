"""The bot's messages at their largest, against the local Slack that refuses what real Slack
refuses: 200 services on a production card with confirm buttons, a 150-person responder group,
and 3,000 typed characters through every incident template."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.deploy.views import APPROVE_ACTION
from bot.incident.views import RESOLVE_VIEW, UPDATE_VIEW
from bot.settings import Settings
from pipeline.kernel.config import Config
from sandbox.slack import LocalSlack
from store.deploy.models import DeploymentState
from tests.conftest import APPROVERS
from tests.driver import BotDriver, plan_cards, run_id_of
from tests.fakes.clock import FakeClock
from tests.fakes.ecs import FakeEcs
from tests.fakes.ecs_world import REGION, REPO
from tests.fakes.health import FakeHealth

MANY = [f"service-{i:03d}" for i in range(200)]


def refused(slack: LocalSlack, *, since: int = 0) -> list[tuple[str, str | None]]:
    """Every call Slack refused (from call number `since` on), as (method, error)."""
    return [(c.method, c.error) for c in slack.calls[since:] if c.error or c.status != 200]


def _big_config(health: FakeHealth) -> Config:
    return Config.model_validate(
        {
            "environments": {
                "staging": {"cluster": "skillancer-staging", "region": REGION, "ecr_check": False},
                "production": {
                    "cluster": "skillancer-production",
                    "region": REGION,
                    "required_approvals": 2,
                    "approvers": APPROVERS,
                    "confirm_buttons": True,
                    "promote_from": "staging",
                    "ecr_check": False,
                    "health": {
                        "retries": 1,
                        "interval": "1s",
                        "timeout": "5s",
                        "paths": ["/health"],
                    },
                    "rollout": {"max_parallel": 32},
                },
            },
            "services": {
                s: {"image": f"{REPO}/{s}", "health_url": {"production": health.url(s)}}
                for s in MANY
            },
        }
    )


@pytest.fixture
async def big_bot(
    settings: Settings, health: FakeHealth, clock: FakeClock, slack: LocalSlack
) -> AsyncIterator[BotDriver]:
    ecs = FakeEcs()
    for service in MANY:
        ecs.add_service("staging", service, "v1.3.0")
        ecs.add_service("production", service, "v1.2.0")
    driver = BotDriver(
        settings=settings, config=_big_config(health), clock=clock, ecs=ecs, slack=slack
    )
    await driver.start()
    yield driver
    await driver.stop()


@pytest.mark.slow
async def test_a_production_deploy_of_200_services_with_confirm_buttons_reaches_success(
    big_bot: BotDriver, slack: LocalSlack
) -> None:
    await big_bot.command("production all", user="UDEV")
    card = plan_cards(slack)[0]
    run_id = run_id_of(card)
    await big_bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await big_bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2")

    assert refused(slack) == []
    assert len(card["blocks"]) <= 50
    actions = next(b for b in card["blocks"] if b["type"] == "actions")
    dialog = actions["elements"][0]["confirm"]
    assert dialog["text"]["type"] == "plain_text"
    assert dialog["text"]["text"].startswith("This deploys 200 services to production:")
    assert "more" in dialog["text"]["text"]
    card_text = str(card["blocks"])
    assert "`service-000` v1.2.0 → *v1.3.0*" in card_text
    assert "`service-199` v1.2.0 → *v1.3.0*" in card_text
    run = await big_bot.runtime.runs.get(run_id)
    assert run.state is DeploymentState.SUCCEEDED
    assert "✅ Production deployment successful" in str(slack.of("chat.update")[-1]["blocks"])


@pytest.fixture
def config(health: FakeHealth) -> Config:
    from tests.conftest import config_dict

    data = config_dict(health)
    data["incidents"]["severities"] = {
        "p1": {
            "description": "Service down, all users affected",
            "response_time": "Immediate",
            "update_every": "15m",
            "responders": ["S0EVERYONE"],
        }
    }
    return Config.model_validate(data)


async def test_a_150_person_responder_group_is_invited_in_batches_slack_accepts(
    bot: BotDriver, slack: LocalSlack
) -> None:
    people = [f"UPERSON{i:03d}" for i in range(150)]
    slack.groups["S0EVERYONE"] = people
    started = len(slack.calls)  # the start-up check found no S0EVERYONE yet, and warned

    await bot.command("p1 checkout down", command="/incident", user="UCMD", channel="CGEN")

    assert refused(slack, since=started) == []
    invites = slack.of("conversations.invite")
    assert [len(str(c["users"]).split(",")) for c in invites] == [100, 51]
    (incident,) = await bot.runtime.incident.list_open()
    assert set(slack.workspace.channel(incident.channel_id).members) == {"UBOT", "UCMD", *people}


def _long(word: str) -> str:
    text = (f"{word} <!channel> & <https://evil.example|bank> " * 80)[:3000]
    assert len(text) == 3000
    return text


async def test_3000_typed_characters_pass_through_every_incident_template(
    bot: BotDriver, slack: LocalSlack
) -> None:
    slack.groups["S0EVERYONE"] = ["ULEAD1"]
    started = len(slack.calls)  # the start-up check found no S0EVERYONE yet, and warned
    await bot.command(f"p1 {_long('summary')}", command="/incident", user="UCMD", channel="CGEN")
    (incident,) = await bot.runtime.incident.list_open()
    room = incident.channel_id
    fields: dict[str, Any] = {
        "status": "identified",
        "action": _long("action"),
        "eta": _long("eta"),
        "impact": _long("impact"),
    }
    await bot.submit(UPDATE_VIEW, incident.id, fields, channel=room)
    await bot.command(
        f"update mitigating {_long('again')}", command="/incident", channel=room, user="UCMD"
    )
    await bot.command("list", command="/incident", user="UCMD", channel="CGEN")
    await bot.submit(
        RESOLVE_VIEW,
        incident.id,
        {"impact": _long("impact"), "resolution": _long("fix"), "follow_up": _long("follow")},
        channel=room,
    )

    assert refused(slack, since=started) == []
    assert slack.long_texts == []
    posted = [str(c.get("text")) + str(c.get("blocks", "")) for c in slack.of("chat.postMessage")]
    assert posted
    assert not any("<!channel> &" in p or "<https://evil" in p for p in posted)
    assert (await bot.runtime.incident.timeline(incident.id))[-1].kind.value == "resolved"
