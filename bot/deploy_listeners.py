"""Bolt listeners for `/deploy` and the Approve/Reject buttons."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError

from bot.context import AppContext
from bot.errors import user_text
from bot.payloads import ButtonClick, SlashCommand
from bot.views import APPROVE_ACTION, REJECT_ACTION, deploy_card, history_text, record_text
from commands.deploy import DeployRequest, Help, HistoryRequest, StatusRequest, parse_deploy, usage
from pipeline.errors import ChatOpsError
from store.models import Decision

log = logging.getLogger(__name__)


def register(app: AsyncApp, ctx: AppContext) -> None:
    @app.command("/deploy")
    async def deploy_command(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        cmd = SlashCommand.model_validate(command)
        try:
            parsed = parse_deploy(cmd.text, ctx.config)
        except ChatOpsError as exc:
            await ack(text=f"{exc.user_message}\nYou typed `{cmd.typed}`.")
            await ctx.audit_command(cmd, outcome=f"refused: {exc.user_message}")
            return
        if isinstance(parsed, Help):
            await ack(text=usage(ctx.config))
            await ctx.audit_command(cmd, outcome="help")
            return
        if isinstance(parsed, StatusRequest | HistoryRequest):
            try:
                if isinstance(parsed, StatusRequest):
                    text = record_text(await ctx.deploy.get(parsed.deployment_id))
                else:
                    runs = await ctx.deploy.history(parsed.environment)
                    text = history_text(runs, parsed.environment)
            except ChatOpsError as exc:
                await ack(text=exc.user_message)
                await ctx.audit_command(cmd, outcome=f"refused: {exc.user_message}")
                return
            await ack(text=text)
            await ctx.audit_command(cmd, outcome="ok")
            return
        await ack()
        await _request_deploy(ctx, cmd, parsed, respond)

    @app.action(APPROVE_ACTION)
    async def approve(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await _decide(ctx, ButtonClick.from_body(body), Decision.APPROVE, respond)

    @app.action(REJECT_ACTION)
    async def reject(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await _decide(ctx, ButtonClick.from_body(body), Decision.REJECT, respond)


async def _request_deploy(
    ctx: AppContext, cmd: SlashCommand, request: DeployRequest, respond: AsyncRespond
) -> None:
    try:
        run = await ctx.deploy.plan(request, user_id=cmd.user_id, channel_id=cmd.channel_id)
    except Exception as exc:  # noqa: BLE001 - the funnel logs what is not a ChatOpsError
        text = user_text(exc)
        await respond(text=f"{text}\nYou typed `{cmd.typed}`.", response_type="ephemeral")
        await ctx.audit_command(cmd, outcome=f"refused: {text}")
        return
    confirm = ctx.config.environment(run.environment).confirm_buttons
    text, blocks = deploy_card(run, confirm=confirm)
    try:
        posted = await ctx.client.chat_postMessage(channel=cmd.channel_id, text=text, blocks=blocks)
    except SlackApiError as exc:
        error = exc.response.get("error", "unknown_error")
        await ctx.deploy.cancel(run.id, reason=f"the plan card could not be posted ({error})")
        hint = (
            " Invite me to this channel (`/invite @chatops`) and try again."
            if error in ("not_in_channel", "channel_not_found")
            else ""
        )
        await respond(
            text=f"I could not post the plan card here (`{error}`), so nothing was deployed.{hint}",
            response_type="ephemeral",
        )
        await ctx.audit_command(cmd, outcome=f"failed: card not posted ({error})", ref=run.id)
        return
    await ctx.deploy.attach_card(run.id, channel_id=cmd.channel_id, message_ts=posted["ts"])
    await ctx.audit_command(cmd, outcome="planned", ref=run.id)
    if run.required_approvals == 0:
        try:
            started = await ctx.deploy.start_if_unapproved(run.id)
        except ChatOpsError as exc:
            await respond(text=exc.user_message, response_type="ephemeral")
            await ctx.audit_command(cmd, outcome=f"refused: {exc.user_message}", ref=run.id)
            started = await ctx.deploy.get(run.id)
        await ctx.notifier.redraw(started)


async def _decide(
    ctx: AppContext, click: ButtonClick, decision: Decision, respond: AsyncRespond
) -> None:
    action = f"{decision.value} {click.value}"
    try:
        outcome = await ctx.deploy.decide(click.value, user_id=click.user_id, decision=decision)
    except Exception as exc:  # noqa: BLE001 - the funnel logs what is not a ChatOpsError
        text = user_text(exc)
        await respond(text=text, response_type="ephemeral", replace_original=False)
        await ctx.audit_click(click, action=action, outcome=f"refused: {text}")
        await _redraw_if_finished(ctx, click.value)
        return
    await ctx.audit_click(click, action=action, outcome=outcome.deployment.state.value)
    # Re-read: once started, the runner may already have moved the run on.
    await ctx.notifier.redraw(await ctx.deploy.get(outcome.deployment.id))


async def _redraw_if_finished(ctx: AppContext, deployment_id: str) -> None:
    """A click on a card whose run has ended (expired at click time, or a stale card whose
    last update was lost) redraws it, so its buttons go away."""
    try:
        run = await ctx.deploy.get(deployment_id)
    except ChatOpsError:
        return
    if run.state.finished:
        await ctx.notifier.redraw(run)
