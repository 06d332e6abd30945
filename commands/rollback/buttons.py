"""The Roll back buttons beside one deploy: on its card while its rollback window is open, on
the post-deploy watch's alert, and beside a suspect deploy in a war room.

Each takes back every service of that deploy not taken back yet, from what ECS runs now to
what the deploy replaced, and starts the rollback through `RollbackCommands`, under the rules
of `/rollback` (who may, the confirmation question when the database would not go back). The
alert's button, once the window has closed, does what `/rollback <env> <services>` does.
"""

from __future__ import annotations

import asyncio
import json

from commands.exchange import Click, Outcome
from commands.rollback.history import migrations_undone
from commands.rollback.parse import RollbackRequest
from commands.rollback.usecases import RollbackCommands
from commands.runs.lifecycle import Runs
from pipeline.fleet import Fleet
from pipeline.kernel.config import Config, Environment
from pipeline.kernel.errors import Forbidden, NotFound
from pipeline.kernel.ports import CardLinks, Clock
from pipeline.kernel.text import Line, Person, counted, line
from store.deploy.models import Deployment, DeploymentState, Target, TargetStatus
from store.deploy.repository import Deployments
from store.incident.models import EventKind, IncidentEvent
from store.incident.repository import Incidents


def suspect_button_value(incident_id: str, deployment_id: str) -> str:
    """The value a war room's Roll back button carries, read back by `on_suspect_button`."""
    return json.dumps({"incident": incident_id, "deploy": deployment_id}, separators=(",", ":"))


class RollbackButtons:
    """What the Roll back buttons of a deploy's card and of a war room do."""

    def __init__(
        self,
        *,
        config: Config,
        deployments: Deployments,
        incidents: Incidents,
        runs: Runs,
        fleet: Fleet,
        rollback: RollbackCommands,
        clock: Clock,
        links: CardLinks | None = None,
    ) -> None:
        self._links = links
        # Alert clicks are rare: one at a time is enough to start one rollback per deploy.
        self._alert_click = asyncio.Lock()
        self._config = config
        self._deployments = deployments
        self._incidents = incidents
        self._runs = runs
        self._fleet = fleet
        self._rollback = rollback
        self._clock = clock

    async def on_window_button(self, click: Click) -> Outcome:
        """**Roll back** on a successful deploy's card, inside its window."""
        deploy = await self._runs.get(click.value)
        env = self._config.environment(deploy.environment)
        await self._rollback.authorize(env, click.user_id)
        if not deploy.window_open(self._clock.now()):
            raise Forbidden(
                "The rollback window of deployment `{id}` has closed{when}; the button changed "
                "nothing. `/rollback {env} {services}` still works: it posts a plan card that "
                "needs the approvals of `{env}`.",
                id=deploy.id,
                when=_closed_words(deploy),
                env=env.name,
                services=",".join(t.service for t in deploy.active_targets),
            )
        return await self._at_once(click, deploy, env)

    async def on_alert_button(self, click: Click) -> Outcome:
        """**Roll back** on a post-deploy watch's alert (after its confirm dialog).

        Inside the deploy's window it rolls back at once, as the card's button does. After
        it, it does what `/rollback <env> <services>` typed in the alert's channel does: a
        plan card there, requested by whoever clicked, needing the environment's approvals.
        While a rollback of those services waits (or runs), a click starts nothing and links
        it. Rollbackers only (Forbidden names them). Reads ECS.
        """
        deploy = await self._runs.get(click.value)
        env = self._config.environment(deploy.environment)
        await self._rollback.authorize(env, click.user_id)
        # Two clicks at once (two people, or a double click) start one rollback.
        async with self._alert_click:
            pending = await self._pending_rollback(deploy)
            if pending is not None:
                return Outcome(
                    reply=await self._waiting(pending), audit="already waiting", ref=pending.id
                )
            if deploy.window_open(self._clock.now()):
                return await self._at_once(click, deploy, env)
            if deploy.reverted_by is not None or not deploy.not_taken_back:
                raise Forbidden(
                    "Deployment `{id}` was rolled back already{by}; nothing was changed.",
                    id=deploy.id,
                    by=f" (rollback `{deploy.reverted_by}`)" if deploy.reverted_by else "",
                )
            services = tuple(t.service for t in deploy.not_taken_back)
            request = RollbackRequest(
                environment=env.name,
                services=services,
                version=None,
                reason=f"Roll back on the watch's alert of deployment {deploy.id}",
                confirmed=False,
            )
            outcome = await self._rollback.request(
                request,
                user_id=click.user_id,
                channel_id=click.channel_id or deploy.channel_id or "",
            )
        if outcome.error is not None or outcome.reply is not None or outcome.ref is None:
            return outcome
        run = await self._runs.get(outcome.ref)
        if not run.is_rollback or not run.required_approvals:
            return outcome
        return Outcome(
            reply=line(
                "📋 The rollback window of deployment `{deploy}` has closed, so rollback `{id}` "
                "is planned as `/rollback {env} {services}` plans it: its card in this channel "
                "needs {n} in `{env}`.",
                deploy=deploy.id,
                id=run.id,
                env=env.name,
                services=",".join(services),
                n=counted(run.required_approvals, "approval"),
            ),
            cards=outcome.cards,
            audit=outcome.audit,
            ref=run.id,
        )

    async def _at_once(self, click: Click, deploy: Deployment, env: Environment) -> Outcome:
        """The one-click rollback of `deploy` inside its window: no approvals."""
        targets = await self._undo_targets(env, deploy)
        history = await self._deployments.succeeded(environment=env.name)
        return await self._rollback.begin(
            env,
            targets,
            user_id=click.user_id,
            channel_id=click.channel_id or deploy.channel_id or "",
            reason=f"Roll back button on deployment {deploy.id}",
            version=None,
            confirmed=True,
            needs_approvals=False,
            migrated=migrations_undone(history, targets),
        )

    async def _pending_rollback(self, deploy: Deployment) -> Deployment | None:
        """A rollback in `deploy`'s environment of any of its services that waits for its
        approvals or its requester's answer, or runs now (the oldest such)."""
        services = {t.service for t in deploy.active_targets}
        now = self._clock.now()
        for run in await self._deployments.in_states(_PENDING):
            if not run.is_rollback or run.environment != deploy.environment:
                continue
            if run.state is DeploymentState.AWAITING_APPROVAL and (
                run.approval_due_at is not None and run.approval_due_at <= now
            ):
                continue  # expired; its timer or the sweep ends it
            if services & {t.service for t in run.active_targets}:
                return run
        return None

    async def _waiting(self, run: Deployment) -> Line:
        """What a click says of a rollback already asked for: who asked, what it waits for,
        and a link to its card."""
        link = await self._links.card_link(run) if self._links is not None else None
        where = (
            line("Its card: {link}", link=link)
            if link
            else line("`/deploy status {id}` shows it.", id=run.id)
        )
        services = ", ".join(f"`{t.service}`" for t in run.active_targets)
        if run.state is not DeploymentState.AWAITING_APPROVAL:
            said = line(
                "↩️ Rollback `{id}` of {services} in `{env}`, asked by {who}, is already {state}; "
                "nothing new was started.",
                id=run.id,
                services=services,
                env=run.environment,
                who=Person(run.requested_by),
                state=run.state.words,
            )
        elif run.message_ts is None:
            said = line(
                "⏳ Rollback `{id}` of {services} in `{env}` is already waiting for {who} to "
                "confirm it; nothing new was started.",
                id=run.id,
                services=services,
                env=run.environment,
                who=Person(run.requested_by),
            )
        else:
            said = line(
                "⏳ Rollback `{id}` of {services} in `{env}`, asked by {who}, is already waiting "
                "for {n}; nothing new was started.",
                id=run.id,
                services=services,
                env=run.environment,
                who=Person(run.requested_by),
                n=counted(run.required_approvals, "approval"),
            )
        return said.then(where.template, **where.slots)

    async def on_suspect_button(self, click: Click) -> Outcome:
        """**Roll back** beside a suspect deploy in a war room: inside the deploy's window it
        starts at once, after it a plan card asks for approvals. Recorded in the timeline."""
        try:
            data = json.loads(click.value)
            incident_id, deploy_id = str(data["incident"]), str(data["deploy"])
        except (ValueError, KeyError, TypeError):
            raise NotFound("That button carries no deployment; nothing was changed.") from None
        incident = await self._incidents.get(incident_id)
        if incident is None:
            raise NotFound("No incident has the id `{id}`; nothing was changed.", id=incident_id)
        deploy = await self._runs.get(deploy_id)
        env = self._config.environment(deploy.environment)
        await self._rollback.authorize(env, click.user_id)
        if deploy.reverted_by is not None:
            raise Forbidden(
                "Deployment `{id}` was rolled back already (rollback `{by}`); nothing was changed.",
                id=deploy.id,
                by=deploy.reverted_by,
            )
        targets = await self._undo_targets(env, deploy)
        history = await self._deployments.succeeded(environment=env.name)
        outcome = await self._rollback.begin(
            env,
            targets,
            user_id=click.user_id,
            channel_id=incident.channel_id,
            reason=f"from the war room of {incident.severity.upper()} {incident.id}",
            version=None,
            confirmed=True,
            needs_approvals=not deploy.window_open(self._clock.now()),
            migrated=migrations_undone(history, targets),
        )
        if outcome.error is None and outcome.ref is not None:
            await self._incidents.record_event(
                incident.id,
                IncidentEvent(
                    at=self._clock.now(),
                    kind=EventKind.ROLLBACK,
                    actor=click.user_id,
                    detail=f"rollback {outcome.ref} of deployment {deploy.id} requested",
                ),
            )
        return outcome

    async def automatic(self, deploy: Deployment, reason: str) -> str | None:
        """A rollback the post-deploy watch starts inside the deploy's window, on behalf of
        the deploy's requester. Returns its id, or None when it cannot start at once (window
        closed, taken back already, or migrations to undo, which a person must confirm)."""
        env = self._config.environment(deploy.environment)
        if not deploy.window_open(self._clock.now()):
            return None
        targets = await self._undo_targets(env, deploy)
        history = await self._deployments.succeeded(environment=env.name)
        migrated = migrations_undone(history, targets)
        if migrated:
            return None
        outcome = await self._rollback.begin(
            env,
            targets,
            user_id=deploy.requested_by,
            channel_id=deploy.channel_id or "",
            reason=reason,
            version=None,
            confirmed=True,
            needs_approvals=False,
        )
        return outcome.ref if outcome.error is None else None

    async def _undo_targets(self, env: Environment, deploy: Deployment) -> list[Target]:
        """Every service of `deploy` not yet taken back: from what runs now to what it replaced."""
        wanted = list(deploy.not_taken_back)
        svcs = [self._config.service(t.service) for t in wanted]
        async with asyncio.TaskGroup() as tg:
            now_on = [tg.create_task(self._fleet.running_version(env, s)) for s in svcs]
        targets = []
        for t, task in zip(wanted, now_on, strict=True):
            current = task.result()
            skipped = current.task_definition == t.previous_task_def
            targets.append(
                Target(
                    service=t.service,
                    current_version=current.version,
                    target_version=t.current_version or "previous revision",
                    previous_task_def=current.task_definition,
                    new_task_def=t.previous_task_def,
                    status=TargetStatus.SKIPPED if skipped else TargetStatus.PENDING,
                    detail="already runs it" if skipped else None,
                    reverts=deploy.id,
                )
            )
        return targets


# Asked for and not finished: awaiting approval, or approved and in flight.
_PENDING = (DeploymentState.AWAITING_APPROVAL, *(s for s in DeploymentState if s.in_flight))


def _closed_words(run: Deployment) -> str:
    closed = run.window_closed_at or run.rollback_deadline
    if run.reverted_by is not None:
        return f" (it was rolled back by `{run.reverted_by}`)"
    return f" at {closed.strftime('%H:%M UTC')}" if closed else ""
