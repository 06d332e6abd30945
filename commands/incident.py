"""`/incident` handlers: declare war rooms; updates, resolution, commander; the reminder sweep.

No Slack types here: `bot/` implements the `IncidentChat` port (and renders the templates), and
translates Slack failures into `ChatOpsError`s before they reach these methods.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from commands.incident_parse import Declare, channel_name
from pipeline.config import Config, Severity
from pipeline.errors import ChatOpsError, NotFound, UsageError
from pipeline.ports import Clock
from store.deployments import Deployments
from store.incidents import (
    EventKind,
    Incident,
    IncidentEvent,
    IncidentId,
    Incidents,
    IncidentStatus,
)
from store.models import Deployment, DeploymentState

log = logging.getLogger(__name__)

UNKNOWN_ETA = "Unknown"
DEFAULT_FOLLOW_UP = "Post-mortem to schedule; the timeline is in the war room."
_SUSPECT_STATES = (
    DeploymentState.SUCCEEDED,
    DeploymentState.ROLLED_BACK,
    DeploymentState.ROLLBACK_FAILED,
)


class NotInWarRoom(UsageError):
    def __init__(self, subcommand: str) -> None:
        super().__init__(
            f"`/incident {subcommand}` works only in an incident's war-room channel, and this is "
            "not one. `/incident list` links the open incidents."
        )


class AlreadyResolved(ChatOpsError):
    def __init__(self, incident: Incident) -> None:
        when = incident.resolved_at.strftime("%H:%M UTC") if incident.resolved_at else "earlier"
        super().__init__(
            f"This incident ({incident.severity.upper()}: {incident.summary}) was already "
            f"resolved at {when}; nothing was changed. Declare a new one with "
            "`/incident <severity> <summary>` if it is back."
        )


def _still_open(incident: Incident) -> Incident:
    if not incident.is_open:
        raise AlreadyResolved(incident)
    return incident


def _not_declared(exc: ChatOpsError, *, archived: str | None) -> ChatOpsError:
    done = f" (I archived `#{archived}`)" if archived else ""
    return ChatOpsError(
        f"{exc.user_message} No incident was declared and nothing was recorded{done}; "
        "run the command again once that is fixed."
    )


@dataclass(frozen=True)
class Reminder:
    """A due reminder: how long since the last update and whether it escalates."""

    escalate: bool
    since_update_s: float
    every_s: float
    escalate_to: tuple[str, ...]


@dataclass(frozen=True)
class Declared:
    incident: Incident
    warnings: tuple[str, ...]


class IncidentChat(Protocol):
    """Slack as incidents need it. Implementations raise ChatOpsError with a readable reason.

    `create_channel` makes a public channel named `name`, or `name-2`, `name-3`... when taken,
    and returns its ID and name; `post_alert` and `announce` return the message ts. Updates,
    resolutions and commander changes go to the war room and the announcement's thread.
    """

    async def create_channel(self, name: str) -> tuple[str, str]: ...
    async def archive_channel(self, channel_id: str) -> None: ...
    async def set_topic(self, incident: Incident) -> None: ...
    async def invite(self, channel_id: str, user_ids: Sequence[str]) -> None: ...
    async def members_of(self, group_id: str) -> frozenset[str]: ...
    async def post_alert(self, incident: Incident, suspects: Sequence[Deployment]) -> str: ...
    async def pin(self, channel_id: str, ts: str) -> None: ...
    async def announce(self, incident: Incident) -> str: ...
    async def post_update(self, incident: Incident) -> None: ...
    async def post_resolved(
        self, incident: Incident, timeline: Sequence[IncidentEvent]
    ) -> None: ...
    async def post_reminder(self, incident: Incident, reminder: Reminder) -> None: ...
    async def commander_changed(self, incident: Incident, previous: str) -> None: ...


class IncidentCommands:
    """What `/incident`, its buttons and modals do, and the reminder sweep. Slack via the port."""

    def __init__(
        self,
        *,
        config: Config,
        incidents: Incidents,
        deployments: Deployments,
        chat: IncidentChat,
        clock: Clock,
    ) -> None:
        self._config = config
        self._incidents = incidents
        self._deployments = deployments
        self._chat = chat
        self._clock = clock
        # Marks this process's reminder claims; a claim with another token is a dead process's.
        self._token = secrets.token_hex(8)

    def severity(self, incident: Incident) -> Severity:
        sev = self._config.incidents.severities.get(incident.severity)
        if sev is None:
            raise RuntimeError(f"Severity {incident.severity!r} is no longer configured.")
        return sev

    def _next_due(self, severity: str, after: datetime) -> datetime | None:
        every = self._config.incidents.severities[severity].update_every_s
        return after + timedelta(seconds=every) if every else None

    async def declare(self, request: Declare, *, user_id: str, channel_id: str) -> Declared:
        """Open a war room, invite, post and pin the alert, announce, then record the incident.

        Raises ChatOpsError when the channel, topic, invites or alert fail; then the channel
        (if made) is archived and nothing is recorded, so running the command again works.
        A failed pin or announcement only adds a warning.
        """
        now = self._clock.now()
        severity = self._config.incidents.severities[request.severity]
        base = channel_name(
            self._config.incidents.channel_pattern,
            at=now,
            summary=request.summary,
            severity=request.severity,
        )
        try:
            war_room, name = await self._chat.create_channel(base)
        except ChatOpsError as exc:
            raise _not_declared(exc, archived=None) from exc
        incident = Incident(
            id=IncidentId(f"{int(now.timestamp())}-{secrets.token_hex(3)}"),
            severity=request.severity,
            summary=request.summary,
            service=self._service_in(request.summary),
            status=IncidentStatus.INVESTIGATING,
            impact=request.summary,
            action=None,
            eta=UNKNOWN_ETA,
            commander=user_id,
            declared_by=user_id,
            declared_in=channel_id,
            channel_id=war_room,
            channel_name=name,
            alert_ts=None,
            announce_channel=self._config.incidents.channel,
            announce_ts=None,
            opened_at=now,
            last_update_at=now,
            next_update_due_at=self._next_due(request.severity, now),
        )
        try:
            await self._chat.set_topic(incident)
            await self._chat.invite(war_room, await self._invitees(user_id, severity))
            alert_ts = await self._chat.post_alert(incident, await self._suspects(now))
        except ChatOpsError as exc:
            await self._abandon(war_room)
            raise _not_declared(exc, archived=name) from exc
        warnings = []
        try:
            await self._chat.pin(war_room, alert_ts)
        except ChatOpsError as exc:
            warnings.append(exc.user_message)
        announce_ts = None
        if incident.announce_channel is not None:
            try:
                announce_ts = await self._chat.announce(incident)
            except ChatOpsError as exc:
                warnings.append(exc.user_message)
        incident = incident.model_copy(update={"alert_ts": alert_ts, "announce_ts": announce_ts})
        try:
            await self._incidents.create(incident)
        except BaseException:
            await self._abandon(war_room)
            raise
        return Declared(incident, tuple(warnings))

    async def _abandon(self, channel_id: str) -> None:
        try:
            await self._chat.archive_channel(channel_id)
        except ChatOpsError:
            log.warning("could not archive abandoned war room %s", channel_id)

    def _service_in(self, summary: str) -> str | None:
        words = {w.strip(".,:;!?()").lower() for w in summary.split()}
        return next((s for s in self._config.services if s in words), None)

    async def _invitees(self, user_id: str, severity: Severity) -> list[str]:
        users = [user_id]
        for ident in severity.responders:
            members = sorted(await self._chat.members_of(ident)) if ident[0] == "S" else [ident]
            users += [m for m in members if m not in users]
        return users

    async def _suspects(self, now: datetime) -> list[Deployment]:
        env = self._config.incidents.environment
        if env is None:
            return []
        since = now - timedelta(seconds=self._config.incidents.suspect_window_s)
        runs = await self._deployments.finished_since(environment=env, since=since)
        return [r for r in runs if r.state in _SUSPECT_STATES]

    async def open_in(self, channel_id: str, *, subcommand: str) -> Incident:
        """The open incident of war room `channel_id` (store only). Raises NotInWarRoom,
        AlreadyResolved."""
        incident = await self._incidents.by_channel(channel_id)
        if incident is None:
            raise NotInWarRoom(subcommand)
        return _still_open(incident)

    async def open_by_id(self, incident_id: str) -> Incident:
        """The open incident `incident_id` (store only). Raises NotFound, AlreadyResolved."""
        incident = await self._incidents.get(incident_id)
        if incident is None:
            raise NotFound(f"No incident has the id `{incident_id}`. `/incident list` shows them.")
        return _still_open(incident)

    async def update(
        self,
        incident_id: str,
        *,
        status: IncidentStatus,
        action: str,
        user_id: str,
        eta: str | None = None,
        impact: str | None = None,
    ) -> Incident:
        """Record an update (resetting the reminder timer), then post the update template.

        Raises AlreadyResolved (nothing changes), or ChatOpsError when the post fails after
        the update was recorded.
        """
        before = await self.open_by_id(incident_id)
        now = self._clock.now()
        after = await self._incidents.record_update(
            before.id,
            status=status,
            action=action,
            eta=(eta or "").strip() or before.eta,
            impact=(impact or "").strip() or before.impact,
            at=now,
            next_update_due_at=self._next_due(before.severity, now),
            actor=user_id,
        )
        if after is None:
            return await self.open_by_id(incident_id)  # resolved meanwhile: raises
        try:
            await self._chat.post_update(after)
        except ChatOpsError as exc:
            raise ChatOpsError(
                f"{exc.user_message} The update itself is recorded and the reminder timer reset."
            ) from exc
        return after

    async def resolve(
        self,
        incident_id: str,
        *,
        resolution: str,
        user_id: str,
        impact: str | None = None,
        follow_up: str | None = None,
    ) -> Incident:
        """Resolve (stopping reminders), then post the resolved template and the post-mortem.

        Raises AlreadyResolved when it was resolved before (nothing changes), or ChatOpsError
        when posting fails after the resolution was recorded.
        """
        before = await self.open_by_id(incident_id)
        after = await self._incidents.resolve(
            before.id,
            at=self._clock.now(),
            resolution=resolution,
            impact=(impact or "").strip() or before.impact,
            follow_up=(follow_up or "").strip() or DEFAULT_FOLLOW_UP,
            actor=user_id,
        )
        if after is None:
            return await self.open_by_id(incident_id)  # resolved meanwhile: raises
        try:
            await self._chat.post_resolved(after, await self._incidents.events(after.id))
        except ChatOpsError as exc:
            raise ChatOpsError(
                f"{exc.user_message} The incident itself is recorded as resolved."
            ) from exc
        return after

    async def hand_over(self, incident_id: str, *, to: str, user_id: str) -> Incident:
        """Make `to` the commander: invite them, record it, retitle and announce in the room.

        Raises AlreadyResolved, UsageError when `to` already commands it, or ChatOpsError when
        the invite fails; in each case nothing changes.
        """
        before = await self.open_by_id(incident_id)
        if to == before.commander:
            raise UsageError(f"<@{to}> is already the incident commander; nothing was changed.")
        await self._chat.invite(before.channel_id, [to])
        after = await self._incidents.set_commander(
            before.id, user_id=to, at=self._clock.now(), actor=user_id
        )
        if after is None:
            return await self.open_by_id(incident_id)  # resolved meanwhile: raises
        await self._chat.commander_changed(after, before.commander)
        return after

    async def list_open(self) -> list[Incident]:
        return await self._incidents.open_incidents()

    async def send_due_reminders(self) -> int:
        """Post every reminder that is due, each exactly once; returns how many were posted.

        A reminder is claimed in the store before posting and the schedule moves on after;
        a failed post releases the claim so the next sweep retries. Missed while the bot was
        down, a reminder is posted once, and the next one is a full interval after it.
        """
        now = self._clock.now()
        sent = 0
        for incident in await self._incidents.open_incidents():
            due = incident.next_update_due_at
            every = self._config.incidents.severities.get(incident.severity)
            if due is None or due > now or every is None or every.update_every_s is None:
                continue
            if not await self._incidents.claim_reminder(incident.id, due=due, token=self._token):
                continue
            try:
                await self._remind(incident, due=due, now=now, severity=every)
            except Exception:
                log.exception("reminder for incident %s failed; retrying next sweep", incident.id)
            else:
                sent += 1
        return sent

    async def _remind(
        self, incident: Incident, *, due: datetime, now: datetime, severity: Severity
    ) -> None:
        every_s = severity.update_every_s or 0.0
        reminder = Reminder(
            escalate=incident.unanswered_reminders >= 1,
            since_update_s=(now - incident.last_update_at).total_seconds(),
            every_s=every_s,
            escalate_to=tuple(severity.escalate_to),
        )
        posted = False
        try:
            await self._chat.post_reminder(incident, reminder)
            posted = True
        finally:
            if not posted:
                await self._incidents.release_reminder(incident.id, token=self._token)
        next_due = due + timedelta(seconds=every_s)
        if next_due <= now:
            next_due = now + timedelta(seconds=every_s)
        minutes = round(reminder.since_update_s / 60)
        event = IncidentEvent(
            at=now,
            kind=EventKind.ESCALATION if reminder.escalate else EventKind.REMINDER,
            detail=f"no update for {minutes} min",
        )
        await self._incidents.finish_reminder(
            incident.id, due=due, token=self._token, next_due=next_due, event=event
        )
