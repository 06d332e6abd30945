"""The Bolt app and its routes: every command, button and form, each through the dispatcher."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.canary.views import (
    CANARY_ABORT_ACTION,
    CANARY_HOLD_ACTION,
    CANARY_PROMOTE_ACTION,
    CANARY_RESUME_ACTION,
)
from bot.deploy.views import APPROVE_ACTION, REJECT_ACTION, WINDOW_ROLLBACK_ACTION
from bot.dispatch import Dispatcher, explain
from bot.gates.views import CANCEL_WAIT_ACTION
from bot.home import HomeTabs
from bot.incident.views import (
    DECLARE_VIEW,
    POST_UPDATE_ACTION,
    RESOLVE_ACTION,
    RESOLVE_VIEW,
    SUSPECT_ROLLBACK_ACTIONS,
    UPDATE_VIEW,
)
from bot.rollback.views import ROLLBACK_CANCEL_ACTION, ROLLBACK_CONFIRM_ACTION
from bot.settings import Settings
from bot.watch.views import WATCH_INCIDENT_ACTION, WATCH_ROLLBACK_ACTION
from commands.canary.usecases import CanaryCommands
from commands.deploy.usecases import DeployCommands
from commands.gates.usecases import GateCommands
from commands.health.usecases import HealthCommands
from commands.incident.usecases import IncidentCommands
from commands.rollback.buttons import RollbackButtons
from commands.rollback.usecases import RollbackCommands
from commands.router import DeployRouter
from pipeline.kernel.config import Config

log = logging.getLogger(__name__)


def build_app(
    settings: Settings,
    config: Config,
    client: AsyncWebClient,
    dispatcher: Dispatcher,
    *,
    deploy: DeployCommands,
    incident: IncidentCommands,
    rollback: RollbackCommands,
    rollback_buttons: RollbackButtons,
    canary: CanaryCommands,
    gates: GateCommands,
    health: HealthCommands,
    home: HomeTabs,
) -> AsyncApp:
    router = DeployRouter(config=config, deploy=deploy, gates=gates)
    secret = settings.slack_signing_secret
    app = AsyncApp(
        # Named, or Bolt reads the whole call stack (with source) to name itself: ~0.1 s a start.
        name="chatops-bot",
        client=client,
        signing_secret=secret.get_secret_value() if secret else "",
        process_before_response=False,
        request_verification_enabled=not settings.socket_mode,
    )

    @app.error
    async def on_error(error: Exception) -> None:
        # Listeners catch their own errors (the dispatcher); this sees Bolt's, logged once.
        explain(error)

    dispatcher.home_opened(app, home.opened)
    dispatcher.command(app, "/deploy", router.on_command)
    dispatcher.action(app, CANCEL_WAIT_ACTION, "cancel the wait", gates.on_cancel_wait)
    dispatcher.command(app, "/health", health.on_command)
    dispatcher.action(app, APPROVE_ACTION, "approve", deploy.on_approve)
    dispatcher.action(app, REJECT_ACTION, "reject", deploy.on_reject)
    dispatcher.action(app, CANARY_PROMOTE_ACTION, "promote canary", canary.on_promote)
    dispatcher.action(app, CANARY_HOLD_ACTION, "hold canary", canary.on_hold)
    dispatcher.action(app, CANARY_RESUME_ACTION, "resume canary", canary.on_resume)
    dispatcher.action(app, CANARY_ABORT_ACTION, "abort canary", canary.on_abort)

    dispatcher.command(app, "/incident", incident.on_command)
    dispatcher.action(app, POST_UPDATE_ACTION, "post update", incident.on_post_update)
    dispatcher.action(app, RESOLVE_ACTION, "resolve", incident.on_resolve)
    dispatcher.action(app, WATCH_INCIDENT_ACTION, "open incident", incident.on_watch_button)
    dispatcher.view(app, UPDATE_VIEW, "post update", incident.on_update_submitted)
    dispatcher.view(app, RESOLVE_VIEW, "resolve", incident.on_resolve_submitted)
    dispatcher.view(app, DECLARE_VIEW, "declare incident", incident.on_declare_submitted)

    dispatcher.command(app, "/rollback", rollback.on_command)
    dispatcher.action(app, ROLLBACK_CONFIRM_ACTION, "confirm rollback", rollback.on_confirm)
    dispatcher.action(app, ROLLBACK_CANCEL_ACTION, "cancel rollback", rollback.on_cancel)
    dispatcher.action(app, WINDOW_ROLLBACK_ACTION, "roll back", rollback_buttons.on_window_button)
    dispatcher.action(
        app, WATCH_ROLLBACK_ACTION, "roll back from the alert", rollback_buttons.on_alert_button
    )
    dispatcher.action(
        app, SUSPECT_ROLLBACK_ACTIONS, "roll back suspect", rollback_buttons.on_suspect_button
    )
    return app
