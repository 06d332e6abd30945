"""The watch alert's two buttons (issue 18, point 1): **Open incident** opens the declare form
prefilled (P2, the service, the environment and the figures) and declares only when it is sent;
**Roll back** after the rollback window does what `/rollback <env> <service>` does, once.
Signed requests, the strict local Slack, moto's ECS and CloudWatch, the injected clock."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.incident.views import DECLARE_VIEW
from bot.watch.views import WATCH_INCIDENT_ACTION, WATCH_ROLLBACK_ACTION
from pipeline.kernel.config import Config
from store.deploy.models import Deployment, DeploymentState, RunKind
from store.deploy.repository import Deployments
from tests.bot.test_watch import HEALTHY, alerts, buttons, deploy_production, minutes_pass
from tests.conftest import config_dict
from tests.driver import BotDriver
from tests.fakes.clock import FakeClock
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack

ONCALL = "UONCALL"
LB = "app/prod-alb/50dc6c495c0c9188"
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/73e2d6bc24d8a067"
HOUR = 3600.0


@pytest.fixture
def config(health: FakeHealth) -> Config:
    data = config_dict(health)
    production = data["environments"]["production"]
    production["rollbackers"] = [ONCALL]
    production["watch"] = {
        "period": "2h",
        "target_groups": {"api-gateway": {"load_balancer": LB, "target_group": TG}},
    }
    return Config.model_validate(data)


async def alert_of_a_breach(bot: BotDriver, slack: FakeSlack, clock: FakeClock) -> dict[str, Any]:
    """A production deploy of api-gateway whose 5xx breached: the alert Slack was sent."""
    await deploy_production(bot, slack)
    await minutes_pass(bot, clock, 6, **{**HEALTHY, "errors": 200})
    [alert] = alerts(slack)
    return alert


def button(alert: dict[str, Any], action_id: str) -> dict[str, Any]:
    return next(b for b in buttons(alert) if b["action_id"] == action_id)


async def rollbacks(bot: BotDriver) -> list[Deployment]:
    """The rollback runs recorded, newest first."""
    runs = await Deployments(bot.runtime.store).list_recent(limit=20)
    return [r for r in runs if r.kind is RunKind.ROLLBACK]


class TestOpenIncident:
    async def test_it_opens_the_declare_form_prefilled_and_declares_nothing_yet(
        self, bot: BotDriver, slack: FakeSlack, clock: FakeClock
    ) -> None:
        alert = await alert_of_a_breach(bot, slack, clock)

        await bot.click(
            WATCH_INCIDENT_ACTION,
            button(alert, WATCH_INCIDENT_ACTION)["value"],
            user=ONCALL,
            trigger_id="T-alert",
        )

        (call,) = slack.of("views.open")
        assert call["trigger_id"] == "T-alert"
        view = slack.workspace.render_view(list(slack.workspace.views.values())[-1])
        assert view["callback_id"] == DECLARE_VIEW
        fields = {b["block_id"]: b["element"] for b in view["blocks"] if "block_id" in b}
        assert fields["severity"]["initial_option"]["value"] == "p2"
        assert [o["value"] for o in fields["services"]["initial_options"]] == ["api-gateway"]
        summary = fields["summary"]["initial_value"]
        assert summary.startswith("api-gateway in production after deployment ")
        assert "5xx 20.0%" in summary
        assert await bot.runtime.incident.list_open() == []

    async def test_the_sent_form_declares_the_incident_freezing_the_service(
        self, bot: BotDriver, slack: FakeSlack, clock: FakeClock
    ) -> None:
        alert = await alert_of_a_breach(bot, slack, clock)
        await bot.click(
            WATCH_INCIDENT_ACTION, button(alert, WATCH_INCIDENT_ACTION)["value"], user=ONCALL
        )
        view = slack.workspace.render_view(list(slack.workspace.views.values())[-1])
        summary = next(b for b in view["blocks"] if b.get("block_id") == "summary")
        state = {
            "severity": {"value": {"type": "static_select", "selected_option": {"value": "p1"}}},
            "summary": {
                "value": {
                    "type": "plain_text_input",
                    "value": summary["element"]["initial_value"],
                }
            },
            "services": {
                "value": {
                    "type": "multi_static_select",
                    "selected_options": [{"value": "api-gateway"}, {"value": "auth-svc"}],
                }
            },
        }

        ack = await bot.send.view_submission(view, state, user=ONCALL)
        await bot.settle()
        await bot.command("production auth-svc", user="UDEV")

        assert ack.errors == {}
        [incident] = await bot.runtime.incident.list_open()
        assert (incident.severity, incident.commander) == ("p1", ONCALL)
        assert incident.services == ("api-gateway", "auth-svc")
        assert "5xx 20.0%" in incident.summary
        assert f"frozen by P1 `{incident.id}`" in slack.responses[-1]["text"]

    async def test_an_older_alerts_button_still_opens_the_form(
        self, bot: BotDriver, slack: FakeSlack
    ) -> None:
        """Alerts posted before the form carried only the service and the summary."""
        value = json.dumps({"service": "auth-svc", "summary": "auth-svc after deployment d-1"})

        await bot.click(WATCH_INCIDENT_ACTION, value, user=ONCALL)

        view = slack.workspace.render_view(list(slack.workspace.views.values())[-1])
        fields = {b["block_id"]: b["element"] for b in view["blocks"] if "block_id" in b}
        assert fields["summary"]["initial_value"] == "auth-svc after deployment d-1"
        assert [o["value"] for o in fields["services"]["initial_options"]] == ["auth-svc"]


class TestRollBackAfterTheWindow:
    async def test_it_posts_a_plan_card_needing_approvals_requested_by_the_clicker(
        self, bot: BotDriver, slack: FakeSlack, clock: FakeClock, world: EcsWorld
    ) -> None:
        alert = await alert_of_a_breach(bot, slack, clock)
        deploy_id = button(alert, WATCH_ROLLBACK_ACTION)["value"]
        clock.advance(HOUR)
        await bot.runtime.timers.run_due()
        await bot.settle()
        cards = len(slack.workspace.channel("CDEPLOYS").messages)

        await bot.click(WATCH_ROLLBACK_ACTION, deploy_id, user=ONCALL)

        [rollback] = await rollbacks(bot)
        assert rollback.state is DeploymentState.AWAITING_APPROVAL
        assert (rollback.requested_by, rollback.required_approvals) == (ONCALL, 2)
        assert rollback.reverts == deploy_id
        assert [t.service for t in rollback.active_targets] == ["api-gateway"]
        card = slack.workspace.channel("CDEPLOYS").messages[cards:]
        [posted] = [m for m in card if m.ts == rollback.message_ts]
        assert posted.thread_ts is None
        assert f"Requested by <@{ONCALL}>" in str(posted.blocks)
        said = slack.responses[-1]["text"]
        assert f"rollback `{rollback.id}` is planned as `/rollback production api-gateway`" in said
        assert "needs 2 approvals in `production`" in said
        assert world.version("production", "api-gateway") != "v1.2.0"

    async def test_a_second_click_links_the_waiting_rollback_and_starts_none(
        self, bot: BotDriver, slack: FakeSlack, clock: FakeClock
    ) -> None:
        alert = await alert_of_a_breach(bot, slack, clock)
        deploy_id = button(alert, WATCH_ROLLBACK_ACTION)["value"]
        clock.advance(HOUR)
        await bot.click(WATCH_ROLLBACK_ACTION, deploy_id, user=ONCALL)
        [first] = await rollbacks(bot)

        await bot.click(WATCH_ROLLBACK_ACTION, deploy_id, user=ONCALL)

        assert await rollbacks(bot) == [await bot.runtime.runs.get(first.id)]
        said = slack.responses[-1]["text"]
        assert f"Rollback `{first.id}` of `api-gateway` in `production`" in said
        assert f"asked by <@{ONCALL}>, is already waiting for 2 approvals" in said
        assert "nothing new was started" in said
        assert f"/archives/CDEPLOYS/p{first.message_ts.replace('.', '')}" in said
        assert (await bot.runtime.audit.recent())[0].outcome == "already waiting"

    async def test_someone_not_a_rollbacker_is_told_who_can(
        self, bot: BotDriver, slack: FakeSlack, clock: FakeClock
    ) -> None:
        alert = await alert_of_a_breach(bot, slack, clock)
        clock.advance(HOUR)

        await bot.click(
            WATCH_ROLLBACK_ACTION, button(alert, WATCH_ROLLBACK_ACTION)["value"], user="UDEV"
        )

        said = slack.responses[-1]
        assert said["response_type"] == "ephemeral"
        assert (
            f"Only the rollbackers of `production` can roll back there: <@{ONCALL}>" in said["text"]
        )
        assert await rollbacks(bot) == []
