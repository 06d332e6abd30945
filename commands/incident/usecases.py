"""`/incident`, its buttons and forms: declare war rooms; updates, resolution, commander.

No Slack types here: `bot/` implements the `IncidentChat` port (and renders the templates), and
translates Slack failures into `UpstreamError`s before they reach these methods. Each change
moves the incident's reminder (`reminders.py`).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from commands.access import Access
from commands.exchange import Answer, Click, Invocation, Later, Outcome, Submission
from commands.incident.parse import (
    Commander,
    Declare,
    DeclareForm,
    ListOpen,
    Resolve,
    ResolveForm,
    Update,
    UpdateForm,
    channel_name,
    parse_declare_form,
    parse_incident,
    parse_resolve_form,
    parse_update_form,
    usage,
)
from commands.incident.reminders import Reminders
from commands.incident.replies import (
    Declared,
    DeclareFormView,
    OpenIncidents,
    ResolveFormView,
    SeverityChoice,
    UpdateFormView,
)
from commands.parsing import Help
from pipeline.kernel.config import Config, Severity
from pipeline.kernel.errors import (
    ChatOpsError,
    Forbidden,
    NotFound,
    UpstreamError,
    UsageError,
)
from pipeline.kernel.ports import Clock, IncidentChat, NotInvited
from pipeline.kernel.text import People, Person, Slot
from store.deploy.models import Deployment, DeploymentState
from store.deploy.repository import Deployments
from store.incident.models import EventKind, Incident, IncidentEvent, IncidentId, IncidentStatus
from store.incident.repository import Incidents

log = logging.getLogger(__name__)

# A breach the watch saw is degraded service, not yet an outage: the runbook's P2.
WATCH_SEVERITY = "p2"

F = TypeVar("F")
"""A parsed form."""

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
            "`/incident {sub}` works only in an incident's war-room channel, and this is not "
            "one. `/incident list` links the open incidents.",
            sub=subcommand,
        )


class AlreadyResolved(ChatOpsError):
    def __init__(self, incident: Incident) -> None:
        when = incident.resolved_at.strftime("%H:%M UTC") if incident.resolved_at else "earlier"
        super().__init__(
            "This incident ({severity}: {summary}) was already resolved at {when}; nothing was "
            "changed. Declare a new one with `/incident <severity> <summary>` if it is back.",
            severity=incident.severity.upper(),
            summary=incident.summary,
            when=when,
        )


class NotAnIncidentRole(Forbidden):
    """The user is not among those who may act on the incident (`Severity.may_act`)."""

    def __init__(self, incident: Incident, severity: Severity, *, doing: str) -> None:
        who = ["the incident commander {commander}"]
        slots: dict[str, Slot] = {"commander": Person(incident.commander)}
        ids = [i for i in severity.may_act_ids if i != incident.commander]
        if ids:
            who.append("{ids}")
            slots["ids"] = People.of(ids)
        if severity.war_room_may_act:
            who.append("the members of the war room #{room}")
            slots["room"] = incident.channel_name
        listed = ", ".join(who[:-1]) + " and " + who[-1] if len(who) > 1 else who[0]
        super().__init__(
            f"Only {listed} can {doing} this {{severity}} incident. Nothing was changed.",
            severity=incident.severity.upper(),
            **slots,
        )


def _still_open(incident: Incident) -> Incident:
    if not incident.is_open:
        raise AlreadyResolved(incident)
    return incident


def _not_declared(exc: ChatOpsError, *, archived: str | None) -> UpstreamError:
    return UpstreamError(
        exc.line.then(
            "No incident was declared and nothing was recorded{done}; run the command again "
            "once that is fixed.",
            done=f" (I archived `#{archived}`)" if archived else "",
        )
    )


class IncidentCommands:
    """What `/incident`, its buttons and forms do. Slack via the port; the reminders' timers
    through `Reminders`."""

    def __init__(
        self,
        *,
        config: Config,
        incidents: Incidents,
        deployments: Deployments,
        chat: IncidentChat,
        access: Access,
        reminders: Reminders,
        clock: Clock,
    ) -> None:
        self._config = config
        # Asked for often, the same while the bot runs: built once (and so drawn once).
        self._help = usage(config)
        self._incidents = incidents
        self._deployments = deployments
        self._chat = chat
        self._access = access
        self._reminders = reminders
        self._clock = clock

    # -- /incident -------------------------------------------------------------------------

    async def on_command(self, inv: Invocation) -> Answer:
        """Answer `/incident …`. Raises UsageError (nothing changes) for what it cannot do."""
        parsed = parse_incident(inv.text, self._config)
        if isinstance(parsed, Help):
            return Outcome(reply=self._help, audit="help")
        if isinstance(parsed, DeclareForm):
            form = self.declare_form(
                channel_id=inv.channel_id, severity=parsed.severity, summary=parsed.summary
            )
            return Outcome(form=form, audit="form opened")
        if isinstance(parsed, ListOpen):
            incidents = tuple(await self._incidents.open_incidents())
            return Outcome(reply=OpenIncidents(incidents, self._clock.now()))
        if isinstance(parsed, Declare):
            request = parsed

            async def declare() -> Outcome:
                declared = await self.declare(
                    request, user_id=inv.user_id, channel_id=inv.channel_id
                )
                return Outcome(reply=declared, ref=declared.incident.id)

            return Later(declare)
        sub = inv.text.split()[0].lower()
        incident = await self.open_in(inv.channel_id, subcommand=sub)
        change = parsed

        async def act() -> Outcome:
            if isinstance(change, Update):
                await self.update(
                    incident.id, status=change.status, action=change.action, user_id=inv.user_id
                )
            elif isinstance(change, Resolve):
                await self.resolve(incident.id, resolution=change.resolution, user_id=inv.user_id)
            elif isinstance(change, Commander):
                await self.hand_over(incident.id, to=change.user_id, user_id=inv.user_id)
            return Outcome(ref=incident.id)

        return Later(act)

    # -- buttons and forms -----------------------------------------------------------------

    async def on_post_update(self, click: Click) -> Outcome:
        incident = await self.open_by_id(click.value)
        await self.authorize(incident, click.user_id, doing="post an update on")
        return Outcome(form=UpdateFormView(incident), audit="form opened", ref=incident.id)

    async def on_watch_button(self, click: Click) -> Outcome:
        """**Open incident** on a post-deploy watch's alert: opens the declare form with a P2
        picked, the service chosen, and the alert's figures (and environment) as the summary.
        Nothing is declared until the form is sent."""
        try:
            data = json.loads(click.value)
            summary = str(data["summary"])
            service = str(data.get("service") or "")
            source = str(data.get("deployment") or "")
        except (ValueError, KeyError, TypeError, AttributeError):
            raise NotFound("That button carries no alert; no incident was declared.") from None
        form = self.declare_form(
            channel_id=click.channel_id,
            severity=WATCH_SEVERITY,
            summary=summary,
            chosen=(service,) if service else (),
            source=source,
        )
        return Outcome(form=form, audit="form opened", ref=source or None)

    def declare_form(
        self,
        *,
        channel_id: str | None,
        severity: str | None = None,
        summary: str = "",
        chosen: tuple[str, ...] = (),
        source: str = "",
    ) -> DeclareFormView:
        """The declare form, prefilled with what is known (a severity or service no longer
        configured is left out)."""
        inc = self._config.incidents
        return DeclareFormView(
            severities=tuple(SeverityChoice(k, s.description) for k, s in inc.severities.items()),
            services=tuple(self._config.services),
            environment=inc.environment,
            channel_id=channel_id,
            severity=severity if severity in inc.severities else None,
            summary=summary,
            chosen=tuple(c for c in chosen if c in self._config.services),
            source=source,
        )

    async def on_declare_submitted(self, form: Submission) -> Answer:
        """The declare form: its errors by field, or acknowledge and declare as `/incident p1 …`
        does, with the services picked."""
        parsed = parse_declare_form(form, self._config)
        if isinstance(parsed, dict):
            return Outcome(form_errors=parsed)
        request = parsed

        async def declare() -> Outcome:
            declared = await self.declare(
                request, user_id=form.user_id, channel_id=form.channel_id or ""
            )
            return Outcome(reply=declared, ref=declared.incident.id)

        return Later(declare)

    async def on_resolve(self, click: Click) -> Outcome:
        incident = await self.open_by_id(click.value)
        await self.authorize(incident, click.user_id, doing="resolve")
        return Outcome(form=ResolveFormView(incident), audit="form opened", ref=incident.id)

    async def on_update_submitted(self, form: Submission) -> Answer:
        async def post(incident: Incident, parsed: UpdateForm) -> None:
            await self.update(
                incident.id,
                status=parsed.status,
                action=parsed.action,
                eta=parsed.eta,
                impact=parsed.impact,
                user_id=form.user_id,
            )

        return await self._submitted(form, parse_update_form, post, first_field="status")

    async def on_resolve_submitted(self, form: Submission) -> Answer:
        async def resolve(incident: Incident, parsed: ResolveForm) -> None:
            await self.resolve(
                incident.id,
                resolution=parsed.resolution,
                impact=parsed.impact,
                follow_up=parsed.follow_up,
                user_id=form.user_id,
            )

        return await self._submitted(form, parse_resolve_form, resolve, first_field="impact")

    async def _submitted(
        self,
        form: Submission,
        parse: Callable[[Submission], F | dict[str, str]],
        act: Callable[[Incident, F], Awaitable[None]],
        *,
        first_field: str,
    ) -> Answer:
        """A submitted form of an open incident: its errors by field (an incident no longer
        open is said at `first_field`), or acknowledge and `act` on what it says."""
        try:
            incident = await self.open_by_id(form.subject)
        except ChatOpsError as exc:
            return Outcome(form_errors={first_field: exc.user_message}, ref=form.subject)
        parsed = parse(form)
        if isinstance(parsed, dict):
            return Outcome(form_errors=parsed, ref=incident.id)

        async def then() -> Outcome:
            await act(incident, parsed)
            return Outcome(ref=incident.id)

        return Later(then)

    # -- use cases -------------------------------------------------------------------------

    async def declare(self, request: Declare, *, user_id: str, channel_id: str) -> Declared:
        """Open a war room, set its topic, invite, post and pin the alert, announce, record.

        Raises UpstreamError when the channel, topic or alert fail, or no one at all could be
        invited; then the channel (if made) is archived and nothing is recorded, so running
        the command again works. People Slack would not invite, a failed pin or a failed
        announcement do not stop a declaration: the reply (and the war room) says so.
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
            service=self._one_service(request),
            services=request.services,
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
            next_update_due_at=self._reminders.next_due(request.severity, now),
        )
        not_invited, suspects = await self._set_up(incident, severity)
        # Recorded before its alert is posted: the alert's buttons work from the moment anyone
        # can see them, even before Slack has told us it posted it.
        try:
            await self._incidents.create(incident)
        except BaseException:
            await self._abandon(war_room)
            raise
        try:
            alert_ts = await self._chat.post_alert(incident, suspects)
        except ChatOpsError as exc:
            await self._incidents.discard(incident.id)
            await self._abandon(war_room)
            raise _not_declared(exc, archived=name) from exc
        incident = incident.model_copy(update={"alert_ts": alert_ts})
        await self._incidents.set_alert(incident.id, alert_ts)
        warnings: list[ChatOpsError] = []
        try:
            await self._chat.pin(war_room, alert_ts)
        except ChatOpsError as exc:
            warnings.append(exc)
        if incident.announce_channel is not None:
            try:
                announce_ts = await self._chat.announce(incident)
                incident = incident.model_copy(update={"announce_ts": announce_ts})
                await self._incidents.set_announcement(incident.id, announce_ts)
            except ChatOpsError as exc:
                warnings.append(exc)
        self._reminders.arm(incident)
        if not_invited:
            try:
                await self._chat.tell_commander(incident, not_invited)
            except ChatOpsError as exc:
                warnings.append(exc)
        return Declared(incident, tuple(warnings), tuple(not_invited))

    async def _set_up(
        self, incident: Incident, severity: Severity
    ) -> tuple[list[NotInvited], list[Deployment]]:
        """Set the new war room's topic, invite its people and find the suspect deploys; on
        failure, archive it. Returns who Slack would not invite, and the suspects."""
        try:
            await self._chat.set_topic(incident)
            invitees = await self._invitees(incident.commander, severity)
            not_invited = await self._chat.invite(incident.channel_id, invitees)
            if len(not_invited) == len(invitees):
                raise UpstreamError(
                    "Slack would not invite anyone to the war room ({why}).",
                    why=", ".join(sorted({n.error for n in not_invited})),
                )
            suspects = await self._suspects(incident.opened_at)
        except ChatOpsError as exc:
            await self._abandon(incident.channel_id)
            raise _not_declared(exc, archived=incident.channel_name) from exc
        return not_invited, suspects

    async def _abandon(self, channel_id: str) -> None:
        try:
            await self._chat.archive_channel(channel_id)
        except ChatOpsError:
            log.warning("could not archive abandoned war room %s", channel_id)

    def _one_service(self, request: Declare) -> str | None:
        """The service the templates name: the one picked, else the first the summary names
        (several picked: none, the summary says it)."""
        if request.services:
            return request.services[0] if len(request.services) == 1 else None
        return self._service_in(request.summary)

    def _service_in(self, summary: str) -> str | None:
        words = {w.strip(".,:;!?()").lower() for w in summary.split()}
        return next((s for s in self._config.services if s in words), None)

    async def _invitees(self, user_id: str, severity: Severity) -> list[str]:
        users = [user_id]
        for ident in severity.responders:
            members = sorted(await self._access.members_of(ident)) if ident[0] == "S" else [ident]
            users += [m for m in members if m not in users]
        return users

    async def _suspects(self, now: datetime) -> list[Deployment]:
        env = self._config.incidents.environment
        if env is None:
            return []
        since = now - timedelta(seconds=self._config.incidents.suspect_window_s)
        runs = await self._deployments.finished_since(environment=env, since=since)
        return [r for r in runs if r.state in _SUSPECT_STATES]

    def _severity(self, incident: Incident) -> Severity:
        known = self._config.incidents.severities.get(incident.severity)
        # A severity taken out of the config since: no responders, the default roles.
        return known or Severity.model_validate({"description": "", "response_time": ""})

    async def authorize(self, incident: Incident, user_id: str, *, doing: str) -> None:
        """Pass when `user_id` may act on `incident`: its commander, or whom its severity's
        `may_act` names (responders, listed IDs and groups, members of the war room). Raises
        NotAnIncidentRole otherwise, or UpstreamError when Slack cannot tell."""
        if user_id == incident.commander:
            return
        severity = self._severity(incident)
        ids = severity.may_act_ids
        if ids and await self._access.is_member(user_id, ids):
            return
        if severity.war_room_may_act and await self._chat.in_room(incident.channel_id, user_id):
            return
        raise NotAnIncidentRole(incident, severity, doing=doing)

    async def _alert_suspects(self, incident: Incident) -> list[Deployment]:
        """The suspects the alert listed: deploys that finished within the window before it."""
        return [
            r
            for r in await self._suspects(incident.opened_at)
            if r.finished_at is None or r.finished_at <= incident.opened_at
        ]

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
            raise NotFound(
                "No incident has the id `{id}`. `/incident list` shows them.", id=incident_id
            )
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
        """Record an update (moving the reminder timer), then post the update template.

        Raises AlreadyResolved (nothing changes), or UpstreamError when the post fails after
        the update was recorded.
        """
        before = await self.open_by_id(incident_id)
        await self.authorize(before, user_id, doing="post an update on")
        now = self._clock.now()
        after = await self._incidents.record_update(
            before.id,
            status=status,
            action=action,
            eta=(eta or "").strip() or before.eta,
            impact=(impact or "").strip() or before.impact,
            at=now,
            next_update_due_at=self._reminders.next_due(before.severity, now),
            actor=user_id,
        )
        if after is None:
            return await self.open_by_id(incident_id)  # resolved meanwhile: raises
        self._reminders.arm(after)
        try:
            await self._chat.post_update(after)
        except ChatOpsError as exc:
            raise UpstreamError(
                exc.line.then("The update itself is recorded and the reminder timer reset.")
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

        Raises AlreadyResolved when it was resolved before (nothing changes), or UpstreamError
        when posting fails after the resolution was recorded.
        """
        before = await self.open_by_id(incident_id)
        await self.authorize(before, user_id, doing="resolve")
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
        self._reminders.arm(after)
        await self._chat.redraw(after, await self._alert_suspects(after))
        try:
            await self._chat.post_resolved(after, await self.timeline(after.id))
        except ChatOpsError as exc:
            raise UpstreamError(
                exc.line.then("The incident itself is recorded as resolved.")
            ) from exc
        return after

    async def hand_over(self, incident_id: str, *, to: str, user_id: str) -> Incident:
        """Make `to` the commander: invite them, record it, retitle and announce in the room.

        Raises AlreadyResolved, UsageError when `to` already commands it, or UpstreamError when
        the invite fails; in each case nothing changes.
        """
        before = await self.open_by_id(incident_id)
        await self.authorize(before, user_id, doing="hand over")
        if to == before.commander:
            raise UsageError(
                "{who} is already the incident commander; nothing was changed.", who=Person(to)
            )
        refused = await self._chat.invite(before.channel_id, [to])
        if refused:
            raise UsageError(
                "Slack would not add {who} to the war room (`{error}`), so nothing was changed. "
                "Pick the new commander from Slack's autocomplete.",
                who=Person(to),
                error=refused[0].error,
            )
        after = await self._incidents.set_commander(
            before.id, user_id=to, at=self._clock.now(), actor=user_id
        )
        if after is None:
            return await self.open_by_id(incident_id)  # resolved meanwhile: raises
        await self._chat.redraw(after, await self._alert_suspects(after))
        await self._chat.commander_changed(after, before.commander)
        return after

    async def list_open(self) -> list[Incident]:
        return await self._incidents.open_incidents()

    async def timeline(self, incident_id: str) -> list[IncidentEvent]:
        """The incident's events, and how each rollback asked for in its war room ended,
        oldest first (store only)."""
        events = await self._incidents.events(incident_id)
        incident = await self._incidents.get(incident_id)
        if incident is None:
            return events
        for run in await self._deployments.rollbacks_in(
            incident.channel_id, since=incident.opened_at
        ):
            if run.state.finished and run.finished_at is not None:
                events.append(
                    IncidentEvent(
                        at=run.finished_at,
                        kind=EventKind.ROLLBACK,
                        detail=f"rollback {run.id} {run.state.words}",
                    )
                )
        return sorted(events, key=lambda e: e.at)
