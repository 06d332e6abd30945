"""Bolt listeners for `/incident`, its buttons and modals, and the Slack side of incidents.

`SlackIncidentChat` implements the `IncidentChat` port: it renders with `bot/incident_views.py`
and turns Slack errors (missing_scope, user_not_found, ...) into readable `UpstreamError`s.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.context import AppContext
from bot.errors import user_text
from bot.incident_views import (
    POST_UPDATE_ACTION,
    RESOLVE_ACTION,
    RESOLVE_VIEW,
    UPDATE_VIEW,
    ModalSubmission,
    alert_message,
    announcement,
    commander_text,
    declared_text,
    list_text,
    postmortem_text,
    reminder_message,
    resolve_form_errors,
    resolve_modal,
    resolved_text,
    suspect_lines,
    topic,
    update_form_errors,
    update_modal,
    update_text,
)
from bot.payloads import ButtonClick, SlashCommand
from commands.incident import Reminder
from commands.incident_parse import (
    CHANNEL_NAME_MAX,
    Commander,
    Declare,
    Help,
    ListOpen,
    Resolve,
    Update,
    parse_incident,
)
from commands.incident_parse import usage as incident_usage
from pipeline.config import Config
from pipeline.errors import ChatOpsError, UpstreamError
from store.incidents import Incident, IncidentEvent, IncidentStatus
from store.models import AuditEntry, Deployment

log = logging.getLogger(__name__)

MAX_NAME_ATTEMPTS = 20
_BAD_NAME = ("invalid_name", "invalid_name_specials", "invalid_name_punctuation")


def slack_failure(exc: SlackApiError, doing: str) -> UpstreamError:
    """A Slack error as a sentence: what failed, why, and what to do about it."""
    error = str(exc.response.get("error", "unknown_error"))
    if error == "missing_scope":
        needed = exc.response.get("needed")
        scope = f" `{needed}`" if needed else ""
        why = (
            f"the Slack app lacks the{scope} permission (`missing_scope`). Ask a Slack admin "
            "to add it to the app and reinstall it."
        )
    elif error in ("user_not_found", "users_not_found"):
        why = (
            f"Slack does not know one of the users (`{error}`). Check the IDs under "
            "`[incidents.severities]` in chatops.toml, or the person you mentioned."
        )
    elif error in ("not_in_channel", "channel_not_found"):
        why = f"I am not in that channel (`{error}`). Invite me with `/invite @chatops`."
    elif error in _BAD_NAME or error.startswith("invalid_name"):
        why = f"Slack refused the name (`{error}`). Check `incidents.channel_pattern`."
    elif error == "restricted_action":
        why = "the workspace settings forbid it (`restricted_action`). Ask a Slack admin."
    else:
        why = f"Slack answered `{error}`."
    return UpstreamError(f"I could not {doing}: {why}")


def numbered(name: str, attempt: int) -> str:
    """`name` for the first attempt, then `name-2`, `name-3`..., still at most 80 long."""
    if attempt == 1:
        return name
    suffix = f"-{attempt}"
    return name[: CHANNEL_NAME_MAX - len(suffix)].rstrip("-_") + suffix


class SlackIncidentChat:
    """The `IncidentChat` port on the Slack Web API."""

    def __init__(self, client: AsyncWebClient, config: Config) -> None:
        self._client = client
        self._config = config

    async def _call(self, doing: str, call: Awaitable[AsyncSlackResponse]) -> AsyncSlackResponse:
        try:
            return await call
        except SlackApiError as exc:
            raise slack_failure(exc, doing) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamError(f"I could not {doing}: Slack did not answer. Try again.") from exc

    async def create_channel(self, name: str) -> tuple[str, str]:
        for attempt in range(1, MAX_NAME_ATTEMPTS + 1):
            candidate = numbered(name, attempt)
            try:
                resp = await self._client.conversations_create(name=candidate, is_private=False)
            except SlackApiError as exc:
                if exc.response.get("error") == "name_taken":
                    continue
                raise slack_failure(exc, f"create the war-room channel `#{candidate}`") from exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise UpstreamError(
                    "I could not create the war room: Slack did not answer."
                ) from exc
            return str(resp["channel"]["id"]), candidate
        raise UpstreamError(
            f"I could not create the war room: every name from `#{name}` to "
            f"`#{numbered(name, MAX_NAME_ATTEMPTS)}` is taken. Reword the summary."
        )

    async def archive_channel(self, channel_id: str) -> None:
        await self._call(
            "archive the war room", self._client.conversations_archive(channel=channel_id)
        )

    async def set_topic(self, incident: Incident) -> None:
        await self._call(
            "set the war room's topic",
            self._client.conversations_setTopic(channel=incident.channel_id, topic=topic(incident)),
        )

    async def invite(self, channel_id: str, user_ids: Sequence[str]) -> None:
        if not user_ids:
            return
        try:
            await self._client.conversations_invite(channel=channel_id, users=",".join(user_ids))
        except SlackApiError as exc:
            if exc.response.get("error") == "already_in_channel":
                return
            raise slack_failure(exc, "invite the responders to the war room") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamError("I could not invite the responders: Slack did not answer.") from exc

    async def members_of(self, group_id: str) -> frozenset[str]:
        resp = await self._call(
            f"list the members of user group `{group_id}`",
            self._client.usergroups_users_list(usergroup=group_id),
        )
        return frozenset(resp.get("users") or [])

    async def post_alert(self, incident: Incident, suspects: Sequence[Deployment]) -> str:
        inc = self._config.incidents
        lines = (
            suspect_lines(suspects, environment=inc.environment, window_s=inc.suspect_window_s)
            if inc.environment
            else None
        )
        text, blocks = alert_message(incident, inc.severities[incident.severity], lines)
        resp = await self._call(
            "post the initial alert in the war room",
            self._client.chat_postMessage(channel=incident.channel_id, text=text, blocks=blocks),
        )
        return str(resp["ts"])

    async def pin(self, channel_id: str, ts: str) -> None:
        await self._call(
            "pin the initial alert", self._client.pins_add(channel=channel_id, timestamp=ts)
        )

    async def announce(self, incident: Incident) -> str:
        if incident.announce_channel is None:
            raise RuntimeError("announce() needs incidents.channel to be configured.")
        severity = self._config.incidents.severities[incident.severity]
        resp = await self._call(
            f"announce the incident in <#{incident.announce_channel}>",
            self._client.chat_postMessage(
                channel=incident.announce_channel, text=announcement(incident, severity)
            ),
        )
        return str(resp["ts"])

    async def _both(self, incident: Incident, text: str, what: str) -> None:
        """Post in the war room (failures raise), then in the announcement thread (logged)."""
        await self._call(
            f"post the {what} in the war room",
            self._client.chat_postMessage(channel=incident.channel_id, text=text),
        )
        if incident.announce_channel and incident.announce_ts:
            try:
                await self._client.chat_postMessage(
                    channel=incident.announce_channel, thread_ts=incident.announce_ts, text=text
                )
            except (SlackApiError, aiohttp.ClientError, TimeoutError):
                log.warning("could not thread the %s for incident %s", what, incident.id)

    async def post_update(self, incident: Incident) -> None:
        await self._both(incident, update_text(incident), "update")

    async def post_resolved(self, incident: Incident, timeline: Sequence[IncidentEvent]) -> None:
        await self._both(incident, resolved_text(incident), "resolution")
        await self._call(
            "post the post-mortem skeleton",
            self._client.chat_postMessage(
                channel=incident.channel_id, text=postmortem_text(incident, timeline)
            ),
        )

    async def post_reminder(self, incident: Incident, reminder: Reminder) -> None:
        text, blocks = reminder_message(incident, reminder)
        await self._call(
            "post the update reminder",
            self._client.chat_postMessage(channel=incident.channel_id, text=text, blocks=blocks),
        )

    async def commander_changed(self, incident: Incident, previous: str) -> None:
        await self.set_topic(incident)
        await self._both(incident, commander_text(incident, previous), "new commander")


def register(app: AsyncApp, ctx: AppContext) -> None:
    @app.command("/incident")
    async def incident_command(
        ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond
    ) -> None:
        cmd = SlashCommand.model_validate(command)
        try:
            parsed = parse_incident(cmd.text, ctx.config)
            incident = None
            if isinstance(parsed, Update | Resolve | Commander):
                sub = cmd.text.split()[0].lower()
                incident = await ctx.incident.open_in(cmd.channel_id, subcommand=sub)
        except ChatOpsError as exc:
            text = f"{exc.user_message}\nYou typed `{cmd.typed}`."
            await ack(text=text, response_type="ephemeral")
            await ctx.audit_command(cmd, outcome=f"refused: {exc.user_message}")
            return
        if isinstance(parsed, Help | ListOpen):
            text = (
                incident_usage(ctx.config)
                if isinstance(parsed, Help)
                else list_text(await ctx.incident.list_open(), ctx.clock.now())
            )
            await ack(text=text, response_type="ephemeral")
            await ctx.audit_command(cmd, outcome="help" if isinstance(parsed, Help) else "ok")
            return
        await ack()
        ref = incident.id if incident else None
        try:
            reply = None
            if isinstance(parsed, Declare):
                declared = await ctx.incident.declare(
                    parsed, user_id=cmd.user_id, channel_id=cmd.channel_id
                )
                ref, reply = declared.incident.id, declared_text(declared)
            elif isinstance(parsed, Update) and ref:
                await ctx.incident.update(
                    ref, status=parsed.status, action=parsed.action, user_id=cmd.user_id
                )
            elif isinstance(parsed, Resolve) and ref:
                await ctx.incident.resolve(ref, resolution=parsed.resolution, user_id=cmd.user_id)
            elif isinstance(parsed, Commander) and ref:
                await ctx.incident.hand_over(ref, to=parsed.user_id, user_id=cmd.user_id)
        except Exception as exc:  # noqa: BLE001 - the funnel logs what is not a ChatOpsError
            text = user_text(exc)
            await respond(text=f"{text}\nYou typed `{cmd.typed}`.", response_type="ephemeral")
            await ctx.audit_command(cmd, outcome=f"failed: {text}", ref=ref)
            return
        if reply:
            await respond(text=reply, response_type="ephemeral")
        await ctx.audit_command(cmd, outcome="ok", ref=ref)

    @app.action(POST_UPDATE_ACTION)
    async def post_update_clicked(
        ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        await _open_modal(ctx, ButtonClick.from_body(body), respond, update=True)

    @app.action(RESOLVE_ACTION)
    async def resolve_clicked(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await _open_modal(ctx, ButtonClick.from_body(body), respond, update=False)

    @app.view(UPDATE_VIEW)
    async def update_submitted(ack: AsyncAck, body: dict[str, Any]) -> None:
        await _submitted(ctx, ack, ModalSubmission.from_body(body))

    @app.view(RESOLVE_VIEW)
    async def resolve_submitted(ack: AsyncAck, body: dict[str, Any]) -> None:
        await _submitted(ctx, ack, ModalSubmission.from_body(body))


async def _open_modal(
    ctx: AppContext, click: ButtonClick, respond: AsyncRespond, *, update: bool
) -> None:
    action = f"{'post update' if update else 'resolve'} {click.value}"
    try:
        incident = await ctx.incident.open_by_id(click.value)
        view = update_modal(incident) if update else resolve_modal(incident)
        try:
            await ctx.client.views_open(trigger_id=click.trigger_id or "", view=view)
        except SlackApiError as exc:
            raise slack_failure(exc, "open the form") from exc
    except Exception as exc:  # noqa: BLE001 - the funnel logs what is not a ChatOpsError
        text = user_text(exc)
        await respond(text=text, response_type="ephemeral", replace_original=False)
        await ctx.audit_click(click, action=action, outcome=f"refused: {text}")
        return
    await ctx.audit_click(click, action=action, outcome="form opened")


async def _submitted(ctx: AppContext, ack: AsyncAck, form: ModalSubmission) -> None:
    update = form.callback_id == UPDATE_VIEW
    first = "status" if update else "impact"
    channel = None
    try:
        incident = await ctx.incident.open_by_id(form.incident_id)
        channel = incident.channel_id
    except ChatOpsError as exc:
        errors = {first: exc.user_message}
    else:
        errors = update_form_errors(form) if update else resolve_form_errors(form)
    if errors:
        await ack(response_action="errors", errors=errors)
        await _audit_form(ctx, form, channel, outcome=f"refused: {'; '.join(errors.values())}")
        return
    await ack()
    try:
        if update:
            await ctx.incident.update(
                form.incident_id,
                status=IncidentStatus(form.text("status")),
                action=form.text("action"),
                eta=form.text("eta"),
                impact=form.text("impact"),
                user_id=form.user_id,
            )
        else:
            await ctx.incident.resolve(
                form.incident_id,
                resolution=form.text("resolution"),
                impact=form.text("impact"),
                follow_up=form.text("follow_up"),
                user_id=form.user_id,
            )
    except Exception as exc:  # noqa: BLE001 - the funnel logs what is not a ChatOpsError
        text = user_text(exc)
        await _tell(ctx, channel, form.user_id, text)
        await _audit_form(ctx, form, channel, outcome=f"failed: {text}")
        return
    await _audit_form(ctx, form, channel, outcome="ok")


async def _tell(ctx: AppContext, channel: str | None, user_id: str, text: str) -> None:
    if channel is None:
        return
    try:
        await ctx.client.chat_postEphemeral(channel=channel, user=user_id, text=text)
    except SlackApiError:
        log.warning("could not tell %s: %s", user_id, text)


async def _audit_form(
    ctx: AppContext, form: ModalSubmission, channel: str | None, *, outcome: str
) -> None:
    verb = "post update" if form.callback_id == UPDATE_VIEW else "resolve"
    await ctx.audit.record(
        AuditEntry(
            at=ctx.clock.now(),
            actor=form.user_id,
            action=f"submit {verb} {form.incident_id}",
            outcome=outcome,
            channel_id=channel,
            detail=form.incident_id or None,
        )
    )
