"""The incident feature's Slack adapter: the `IncidentChat` port.

Renders with `bot/incident/views.py` and calls Slack through the one gateway (`bot/slack.py`),
which turns Slack errors into readable `UpstreamError`s.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.blocks import Blocks
from bot.incident.views import (
    REMINDER_EVENT,
    alert_message,
    announcement,
    commander_text,
    not_invited_text,
    postmortem_texts,
    reminder_message,
    resolved_text,
    suspect_buttons,
    suspect_lines,
    topic,
    update_text,
)
from bot.mrkdwn import render
from bot.slack import SlackGateway, slack_error, slack_failure
from commands.incident.parse import CHANNEL_NAME_MAX
from pipeline.kernel.config import Config
from pipeline.kernel.errors import ChatOpsError, UpstreamError
from pipeline.kernel.ports import NotInvited, Reminder
from pipeline.kernel.text import Line
from store.deploy.models import Deployment
from store.incident.models import Incident, IncidentEvent

log = logging.getLogger(__name__)

MAX_NAME_ATTEMPTS = 20


def numbered(name: str, attempt: int) -> str:
    """`name` for the first attempt, then `name-2`, `name-3`..., still at most 80 long."""
    if attempt == 1:
        return name
    suffix = f"-{attempt}"
    return name[: CHANNEL_NAME_MAX - len(suffix)].rstrip("-_") + suffix


class SlackIncidentChat:
    """The `IncidentChat` port on the Slack Web API."""

    def __init__(self, slack: SlackGateway, config: Config) -> None:
        self._slack = slack
        self._client = slack.client
        self._config = config

    async def create_channel(self, name: str) -> tuple[str, str]:
        for attempt in range(1, MAX_NAME_ATTEMPTS + 1):
            candidate = numbered(name, attempt)
            try:
                resp = await self._client.conversations_create(name=candidate, is_private=False)
            except SlackApiError as exc:
                if slack_error(exc) == "name_taken":
                    continue
                raise slack_failure(exc, f"create the war-room channel #{candidate}") from exc
            except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
                raise slack_failure(exc, "create the war room") from exc
            return str(resp["channel"]["id"]), candidate
        raise UpstreamError(
            "I could not create the war room: every name from #{first} to #{last} is taken. "
            "Reword the summary.",
            first=name,
            last=numbered(name, MAX_NAME_ATTEMPTS),
        )

    async def archive_channel(self, channel_id: str) -> None:
        await self._slack.call(
            "archive the war room", self._client.conversations_archive(channel=channel_id)
        )

    async def set_topic(self, incident: Incident) -> None:
        text = topic(incident)
        await self._slack.call(
            "set the war room's topic",
            self._client.conversations_setTopic(channel=incident.channel_id, topic=text),
        )

    async def invite(self, channel_id: str, user_ids: Sequence[str]) -> list[NotInvited]:
        if not user_ids:
            return []
        return await self._slack.invite(
            "invite the responders to the war room", channel_id, user_ids
        )

    async def tell_commander(self, incident: Incident, not_invited: Sequence[NotInvited]) -> None:
        await self._slack.post(
            "tell the commander who could not be invited",
            channel=incident.channel_id,
            text=not_invited_text(incident, not_invited),
        )

    def _alert(self, incident: Incident, suspects: Sequence[Deployment]) -> tuple[str, Blocks]:
        inc = self._config.incidents
        lines = (
            suspect_lines(suspects, environment=inc.environment, window_s=inc.suspect_window_s)
            if inc.environment
            else None
        )
        return alert_message(
            incident,
            inc.severities[incident.severity],
            lines,
            suspect_buttons(incident, suspects) if inc.environment else None,
        )

    async def post_alert(self, incident: Incident, suspects: Sequence[Deployment]) -> str:
        text, blocks = self._alert(incident, suspects)
        return await self._slack.post(
            "post the initial alert in the war room",
            channel=incident.channel_id,
            text=text,
            blocks=blocks,
        )

    async def redraw(self, incident: Incident, suspects: Sequence[Deployment]) -> None:
        text, blocks = self._alert(incident, suspects)
        severity = self._config.incidents.severities[incident.severity]

        async def alert() -> None:
            if incident.alert_ts is not None:
                await self._slack.update(
                    "redraw the pinned alert",
                    channel=incident.channel_id,
                    ts=incident.alert_ts,
                    text=text,
                    blocks=blocks,
                )

        async def announced() -> None:
            if incident.announce_channel and incident.announce_ts:
                await self._slack.update(
                    "redraw the announcement",
                    channel=incident.announce_channel,
                    ts=incident.announce_ts,
                    text=announcement(incident, severity),
                )

        places: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("topic", lambda: self.set_topic(incident)),
            ("pinned alert", alert),
            ("announcement", announced),
        ]
        for place, redraw in places:
            try:
                await redraw()
            except ChatOpsError as exc:
                log.warning(
                    "incident %s, %s: %s",
                    incident.id,
                    place,
                    exc.user_message,
                    extra={"incident_id": incident.id},
                )

    async def in_room(self, channel_id: str, user_id: str) -> bool:
        return await self._slack.is_in_channel(
            "check who is in the war room", channel=channel_id, user=user_id
        )

    async def pin(self, channel_id: str, ts: str) -> None:
        await self._slack.call(
            "pin the initial alert", self._client.pins_add(channel=channel_id, timestamp=ts)
        )

    async def announce(self, incident: Incident) -> str:
        if incident.announce_channel is None:
            raise RuntimeError("announce() needs incidents.channel to be configured.")
        severity = self._config.incidents.severities[incident.severity]
        return await self._slack.post(
            "announce the incident in the incidents channel",
            channel=incident.announce_channel,
            text=announcement(incident, severity),
        )

    async def _both(self, incident: Incident, text: str, what: str) -> None:
        """Post in the war room (failures raise), then in the announcement thread (logged)."""
        await self._slack.post(
            f"post the {what} in the war room", channel=incident.channel_id, text=text
        )
        if incident.announce_channel and incident.announce_ts:
            try:
                await self._slack.post(
                    f"post the {what} in the announcement thread",
                    channel=incident.announce_channel,
                    thread_ts=incident.announce_ts,
                    text=text,
                )
            except ChatOpsError as exc:
                log.warning(
                    "incident %s: %s",
                    incident.id,
                    exc.user_message,
                    extra={"incident_id": incident.id},
                )

    async def tell_room(self, incident: Incident, message: Line) -> None:
        await self._slack.post(
            "tell the war room", channel=incident.channel_id, text=render(message)
        )

    async def post_update(self, incident: Incident) -> None:
        await self._both(incident, update_text(incident), "update")

    async def post_resolved(self, incident: Incident, timeline: Sequence[IncidentEvent]) -> None:
        await self._both(incident, resolved_text(incident), "resolution")
        parts = postmortem_texts(incident, timeline)
        first = await self._slack.post(
            "post the post-mortem skeleton", channel=incident.channel_id, text=parts[0]
        )
        for part in parts[1:]:
            await self._slack.post(
                "post the rest of the post-mortem",
                channel=incident.channel_id,
                thread_ts=first,
                text=part,
            )

    async def post_reminder(self, incident: Incident, reminder: Reminder) -> None:
        text, blocks = reminder_message(incident, reminder)
        await self._slack.post(
            "post the update reminder",
            channel=incident.channel_id,
            text=text,
            blocks=blocks,
            metadata={"event_type": REMINDER_EVENT, "event_payload": {"key": reminder.key}},
        )

    async def reminder_posted(self, incident: Incident, reminder: Reminder) -> bool:
        found = await self._slack.find_message(
            "look for an unconfirmed reminder",
            channel=incident.channel_id,
            event_type=REMINDER_EVENT,
            key=reminder.key,
        )
        return found is not None

    async def commander_changed(self, incident: Incident, previous: str) -> None:
        await self._both(incident, commander_text(incident, previous), "new commander")
