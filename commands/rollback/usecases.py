"""`/rollback`, the Roll back buttons (deploy card, war room) and the rollback window.

A rollback is a run (`kind = rollback`) like a deploy: its targets go from what ECS runs now to
a task definition the records say ran before. Inside a deploy's rollback window it needs no
approval (rollback is the safe direction); after the window it is a deploy of the older version
and needs the environment's approvals. A rollback of a service that a deploy is rolling out
right now stops that deploy, which then rolls back everything it changed.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from commands.access import Access
from commands.deploy.pending import approval_timer
from commands.deploy.planning import new_deployment_id
from commands.deploy.usecases import DeployCommands
from commands.exchange import Answer, Click, Invocation, Later, Outcome
from commands.rollback.parse import Help, RollbackRequest, parse_rollback, usage
from pipeline.deploy import DeployEngine, RunningVersion, window_timer
from pipeline.kernel.config import Config, Environment
from pipeline.kernel.errors import (
    ChatOpsError,
    Forbidden,
    NotFound,
    UsageError,
    options,
)
from pipeline.kernel.ports import Clock, Timers
from pipeline.kernel.text import People, Person, line
from pipeline.runner import Runner
from store.deploy.models import (
    Deployment,
    DeploymentState,
    RunKind,
    StageEvent,
    Target,
    TargetStatus,
    UndoneMigrations,
)
from store.deploy.repository import Deployments
from store.incident.models import EventKind, IncidentEvent
from store.incident.repository import Incidents

# A confirmation question stays open this long; a later click is refused as stale.
CONFIRM_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class RollbackPrompt:
    """Reply: what the rollback will change, with Roll back / Cancel for the requester.

    When the run takes back deploys that ran migrations (`run.undoes_migrations`, seed 002:
    "Database errors: DO NOT rollback"), the question is asked even when `-y` said not to
    (`asked_despite_yes`).
    """

    run: Deployment
    asked_despite_yes: bool = False


@dataclass(frozen=True)
class _Undo:
    """The deploy whose change of one service is in effect, and that change."""

    run: Deployment
    target: Target


def suspect_button_value(incident_id: str, deployment_id: str) -> str:
    return json.dumps({"incident": incident_id, "deploy": deployment_id}, separators=(",", ":"))


class RollbackCommands:
    """What `/rollback` and the Roll back buttons do, and the closing of rollback windows."""

    def __init__(
        self,
        *,
        config: Config,
        deployments: Deployments,
        incidents: Incidents,
        deploy: DeployCommands,
        engine: DeployEngine,
        runner: Runner,
        access: Access,
        timers: Timers,
        clock: Clock,
    ) -> None:
        self._config = config
        self._deployments = deployments
        self._incidents = incidents
        self._deploy = deploy
        self._engine = engine
        self._runner = runner
        self._access = access
        self._timers = timers
        self._clock = clock

    # -- /rollback -------------------------------------------------------------------------

    async def on_command(self, inv: Invocation) -> Answer:
        """Answer `/rollback …`. Raises UsageError or Forbidden (nothing changes)."""
        parsed = parse_rollback(inv.text, self._config)
        if isinstance(parsed, Help):
            return Outcome(reply=usage(self._config), audit="help")
        request = parsed
        env = self._config.environment(request.environment)
        await self._authorize(env, inv.user_id)

        async def then() -> Outcome:
            return await self.request(request, user_id=inv.user_id, channel_id=inv.channel_id)

        return Later(then)

    async def request(self, request: RollbackRequest, *, user_id: str, channel_id: str) -> Outcome:
        """Stop a deploy that is rolling these services out, or plan the rollback: ask to
        confirm, start at once (`-y`), or post a plan card needing approvals (window closed).

        Reads ECS. Raises UsageError for a rollback the records cannot support.
        """
        env = self._config.environment(request.environment)
        holder = await self._holder(env, request.services)
        if holder is not None:
            return await self._stop(holder, user_id=user_id, reason=request.reason)
        history = await self._deployments.succeeded(environment=env.name)
        services = request.services or self._last_deploy_services(env, history)
        targets = await self._plan(env, services, request.version, history)
        within = self._within_window(targets, history)
        return await self._begin(
            env,
            targets,
            user_id=user_id,
            channel_id=channel_id,
            reason=request.reason,
            version=request.version,
            confirmed=request.confirmed,
            needs_approvals=not within,
            migrated=_migrations_undone(history, targets),
        )

    async def _authorize(self, env: Environment, user_id: str) -> None:
        allowed = env.may_roll_back_ids()
        if allowed == []:
            raise Forbidden(
                "Nobody may roll back `{env}` from Slack: its `rollbackers` list is empty in "
                "chatops.toml. Nothing was changed.",
                env=env.name,
            )
        if allowed is not None and not await self._access.is_member(user_id, allowed):
            raise Forbidden(
                "Only the rollbackers of `{env}` can roll back there: {who}. Nothing was changed.",
                env=env.name,
                who=People.of(allowed),
            )

    async def _holder(
        self, env: Environment, services: tuple[str, ...] | None
    ) -> Deployment | None:
        names = services or tuple(self._config.services)
        holder_id = await self._deployments.running_for(env.name, names)
        if holder_id is None:
            return None
        holder = await self._deploy.get(holder_id)
        if holder.is_rollback or holder.state is DeploymentState.ROLLING_BACK:
            raise ChatOpsError(
                "{what} `{id}` is already rolling back in `{env}`; a second rollback would "
                "fight it, so nothing was changed. Follow it with `/deploy status {id}`.",
                what="Rollback" if holder.is_rollback else "Deployment",
                id=holder.id,
                env=env.name,
            )
        return holder

    async def _stop(self, holder: Deployment, *, user_id: str, reason: str | None) -> Outcome:
        """Move a rolling-out deploy to ROLLING_BACK; its run stops and rolls back."""
        now = self._clock.now()
        why = f"stopped by /rollback: {reason}" if reason else "stopped by /rollback"
        moved = await self._deployments.transition(
            holder.id,
            from_states=[DeploymentState.APPROVED, DeploymentState.RUNNING],
            to=DeploymentState.ROLLING_BACK,
            at=now,
            stage="rollback",
            error=why,
        )
        if not moved:
            latest = await self._deploy.get(holder.id)
            raise ChatOpsError(
                "Deployment `{id}` finished while you asked ({state}); nothing was changed. "
                "Run `/rollback` again if it still needs to go back.",
                id=holder.id,
                state=latest.state.value.replace("_", " "),
            )
        await self._deployments.record_event(
            StageEvent(
                deployment_id=holder.id,
                at=now,
                stage="rollback",
                status="requested",
                detail=f"by {user_id}" + (f": {reason}" if reason else ""),
            )
        )
        self._runner.stop(holder.id)
        self._runner.submit(holder.id)
        services = [t.service for t in holder.active_targets]
        return Outcome(
            reply=line(
                "Deployment `{id}` was rolling out {services} in `{env}`: I stopped it, and it "
                "is rolling back every service it changed. Its card shows the progress.",
                id=holder.id,
                services=options(services),
                env=holder.environment,
            ),
            cards=(await self._deploy.get(holder.id),),
            audit="stopped the deploy",
            ref=holder.id,
        )

    def _last_deploy_services(self, env: Environment, history: list[Deployment]) -> tuple[str, ...]:
        for run in history:
            if run.kind is RunKind.DEPLOY:
                services = tuple(t.service for t in run.active_targets if t.reverted_by is None)
                if services:
                    return services
        raise UsageError(
            "Nothing to roll back in `{env}`: no deploy has succeeded there yet (or every one "
            "was rolled back already). Name a service and a version that ran there.",
            env=env.name,
        )

    async def _plan(
        self,
        env: Environment,
        services: tuple[str, ...],
        version: str | None,
        history: list[Deployment],
    ) -> list[Target]:
        svcs = [self._config.service(s) for s in services]
        async with asyncio.TaskGroup() as tg:
            now_on = [tg.create_task(self._engine.running_version(env, s)) for s in svcs]
        targets = []
        for svc, task in zip(svcs, now_on, strict=True):
            current: RunningVersion = task.result()
            undo = _last_change(history, svc.name)
            if version is None:
                if undo is None or undo.target.previous_task_def is None:
                    raise UsageError(
                        "`{service}` has no previous version in `{env}`: no deploy of it "
                        "succeeded there that was not rolled back already. {ran}",
                        service=svc.name,
                        env=env.name,
                        ran=_versions_hint(history, svc.name),
                    )
                to_version = undo.target.current_version
                to_task_def = undo.target.previous_task_def
            else:
                found = _newest_task_def(history, svc.name, version)
                if found is None:
                    raise UsageError(
                        "`{service}` never ran `{version}` in `{env}` as far as the records go. "
                        "{ran}",
                        service=svc.name,
                        version=version,
                        env=env.name,
                        ran=_versions_hint(history, svc.name),
                    )
                to_version, to_task_def = version, found
            reverts = undo.run.id if undo is not None else None
            skipped = current.task_definition == to_task_def
            targets.append(
                Target(
                    service=svc.name,
                    current_version=current.version,
                    target_version=to_version or "previous revision",
                    previous_task_def=current.task_definition,
                    new_task_def=to_task_def,
                    status=TargetStatus.SKIPPED if skipped else TargetStatus.PENDING,
                    detail="already runs it" if skipped else None,
                    reverts=reverts,
                )
            )
        return targets

    def _within_window(self, targets: list[Target], history: list[Deployment]) -> bool:
        """True when every service goes back from a deploy whose window is still open."""
        by_id = {r.id: r for r in history}
        now = self._clock.now()
        active = [t for t in targets if t.status is not TargetStatus.SKIPPED]
        return bool(active) and all(
            t.reverts is not None and t.reverts in by_id and by_id[t.reverts].window_open(now)
            for t in active
        )

    async def _begin(
        self,
        env: Environment,
        targets: list[Target],
        *,
        user_id: str,
        channel_id: str,
        reason: str | None,
        version: str | None,
        confirmed: bool,
        needs_approvals: bool,
        migrated: tuple[UndoneMigrations, ...] = (),
    ) -> Outcome:
        """Record the rollback run and ask the requester, or publish it at once (`confirmed`,
        and no deploy it takes back ran migrations: the database does not go back with the
        code, so that question is never skipped)."""
        active = [t for t in targets if t.status is not TargetStatus.SKIPPED]
        if not active:
            raise ChatOpsError(
                "Nothing to roll back: {services} already run the version asked for in `{env}`.",
                services=", ".join(f"`{t.service}` {t.current_version}" for t in targets),
                env=env.name,
            )
        now = self._clock.now()
        reverted = {t.reverts for t in active}
        approvals = env.required_approvals if needs_approvals else 0
        ask = not confirmed or bool(migrated)
        if approvals:
            due: datetime | None = now + timedelta(seconds=env.approval_timeout_s)
        else:
            due = now + timedelta(seconds=CONFIRM_TIMEOUT_S) if ask else None
        run = Deployment(
            id=new_deployment_id(now),
            environment=env.name,
            requested_by=user_id,
            version=version,
            state=DeploymentState.AWAITING_APPROVAL,
            stage=None,
            required_approvals=approvals,
            channel_id=channel_id,
            message_ts=None,
            created_at=now,
            updated_at=now,
            approval_due_at=due,
            started_at=None,
            finished_at=None,
            error=None,
            targets=tuple(targets),
            kind=RunKind.ROLLBACK,
            reverts=reverted.pop() if len(reverted) == 1 else None,
            reason=reason,
            undoes_migrations=migrated,
        )
        await self._deployments.create(run)
        if not ask or (approvals and not migrated):
            return await self._deploy.publish(run)
        if due is not None:
            self._timers.arm(approval_timer(run.id), due)
        prompt = RollbackPrompt(run, asked_despite_yes=confirmed)
        return Outcome(reply=prompt, audit="asked to confirm", ref=run.id)

    # -- the confirmation question -----------------------------------------------------------

    async def on_confirm(self, click: Click) -> Outcome:
        """The requester's **Roll back**: checks the question is still current, then starts."""
        run = await self._pending(click)
        env = self._config.environment(run.environment)
        for t in run.active_targets:
            now_on = await self._engine.running_version(env, self._config.service(t.service))
            if now_on.task_definition != t.previous_task_def:
                await self._deploy.cancel(run.id, reason="stale confirmation")
                raise Forbidden(
                    "`{service}` changed since you asked (it now runs {now}), so I cancelled "
                    "this rollback. Type `/rollback` again to see what it would do now.",
                    service=t.service,
                    now=now_on.version or "another revision",
                )
        self._timers.disarm(approval_timer(run.id))
        history = await self._deployments.succeeded(environment=env.name)
        migrated = _migrations_undone(history, list(run.targets))
        if migrated:
            # The requester saw the database warning and went on: the timeline says so.
            await self._deployments.record_event(
                StageEvent(
                    deployment_id=run.id,
                    at=self._clock.now(),
                    stage="confirm",
                    status="done",
                    detail=f"by {click.user_id}, knowing the database stays as "
                    + ", ".join(f"deployment {m.deployment_id} migrated it" for m in migrated),
                )
            )
        outcome = await self._deploy.publish(run)
        if outcome.error is not None:
            return outcome
        if run.required_approvals:
            return Outcome(
                reply=line(
                    "📋 Rollback `{id}` is planned: its card in this channel needs {n} "
                    "approval(s) in `{env}`.",
                    id=run.id,
                    n=run.required_approvals,
                    env=run.environment,
                ),
                cards=outcome.cards,
                audit=outcome.audit,
                ref=run.id,
                replace=True,
            )
        return Outcome(
            reply=line("↩️ Rolling back `{id}`: the card in this channel tracks it.", id=run.id),
            cards=outcome.cards,
            audit=outcome.audit,
            ref=run.id,
            replace=True,
        )

    async def on_cancel(self, click: Click) -> Outcome:
        run = await self._pending(click)
        await self._deploy.cancel(run.id, reason="cancelled by the requester")
        return Outcome(
            reply="Cancelled: nothing was rolled back.", audit="cancelled", ref=run.id, replace=True
        )

    async def _pending(self, click: Click) -> Deployment:
        run = await self._deploy.get(click.value)
        if not run.is_rollback:
            raise NotFound("That button belongs to no rollback; nothing was changed.")
        if click.user_id != run.requested_by:
            raise Forbidden(
                "Only {who} can answer this question; type `/rollback` yourself to roll back. "
                "Nothing was changed.",
                who=Person(run.requested_by),
            )
        now = self._clock.now()
        if (
            run.state is DeploymentState.AWAITING_APPROVAL
            and run.approval_due_at is not None
            and run.approval_due_at <= now
        ):
            await self._deploy.expire(run.id)
            run = await self._deploy.get(run.id)
        # A rollback that needs approvals is asked about only before its card is posted (the
        # deploy it takes back ran migrations); once posted, the approvers decide.
        posted = run.required_approvals and run.message_ts is not None
        if run.state is not DeploymentState.AWAITING_APPROVAL or posted:
            raise Forbidden(
                "This question is stale: rollback `{id}` is already {state}. Nothing was "
                "changed; type `/rollback` again if you still need it.",
                id=run.id,
                state=run.state.value.replace("_", " "),
            )
        return run

    # -- Roll back buttons -------------------------------------------------------------------

    async def on_window_button(self, click: Click) -> Outcome:
        """**Roll back** on a successful deploy's card, inside its window."""
        deploy = await self._deploy.get(click.value)
        env = self._config.environment(deploy.environment)
        await self._authorize(env, click.user_id)
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
        targets = await self._undo_targets(env, deploy)
        history = await self._deployments.succeeded(environment=env.name)
        return await self._begin(
            env,
            targets,
            user_id=click.user_id,
            channel_id=click.channel_id or deploy.channel_id or "",
            reason=f"Roll back button on deployment {deploy.id}",
            version=None,
            confirmed=True,
            needs_approvals=False,
            migrated=_migrations_undone(history, targets),
        )

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
        deploy = await self._deploy.get(deploy_id)
        env = self._config.environment(deploy.environment)
        await self._authorize(env, click.user_id)
        if deploy.reverted_by is not None:
            raise Forbidden(
                "Deployment `{id}` was rolled back already (rollback `{by}`); nothing was changed.",
                id=deploy.id,
                by=deploy.reverted_by,
            )
        targets = await self._undo_targets(env, deploy)
        history = await self._deployments.succeeded(environment=env.name)
        outcome = await self._begin(
            env,
            targets,
            user_id=click.user_id,
            channel_id=incident.channel_id,
            reason=f"from the war room of {incident.severity.upper()} {incident.id}",
            version=None,
            confirmed=True,
            needs_approvals=not deploy.window_open(self._clock.now()),
            migrated=_migrations_undone(history, targets),
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

    async def _undo_targets(self, env: Environment, deploy: Deployment) -> list[Target]:
        """Every service of `deploy` not yet taken back: from what runs now to what it replaced."""
        wanted = [t for t in deploy.active_targets if t.reverted_by is None]
        svcs = [self._config.service(t.service) for t in wanted]
        async with asyncio.TaskGroup() as tg:
            now_on = [tg.create_task(self._engine.running_version(env, s)) for s in svcs]
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

    # -- the window ------------------------------------------------------------------------

    async def close_window(self, deployment_id: str) -> bool:
        """At the deadline: close a deploy's rollback window and redraw its card (button gone)."""
        run = await self._deployments.get(deployment_id)
        now = self._clock.now()
        if run is None or run.rollback_deadline is None or run.window_closed_at is not None:
            return False
        if now < run.rollback_deadline:
            self._timers.arm(window_timer(run.id), run.rollback_deadline)
            return False
        if not await self._deployments.close_window(run.id, at=run.rollback_deadline):
            return False
        # A canary's old colours kept running for the window; now they can go.
        await self._engine.retire_old_colours(run.id)
        await self._deploy.redraw(await self._deploy.get(run.id))
        return True

    async def arm_timers(self) -> int:
        """Arm the closing of every open rollback window (at start-up). Returns how many."""
        windows = await self._deployments.open_windows()
        for run in windows:
            if run.rollback_deadline is not None:
                self._timers.arm(window_timer(run.id), run.rollback_deadline)
        return len(windows)

    async def close_due_windows(self) -> int:
        """The safety sweep: close every window whose deadline passed."""
        closed = 0
        for run in await self._deployments.open_windows():
            closed += await self.close_window(run.id)
        return closed


def _last_change(history: list[Deployment], service: str) -> _Undo | None:
    """The newest successful deploy of `service` that no rollback took back."""
    for run in history:
        if run.kind is not RunKind.DEPLOY:
            continue
        for t in run.active_targets:
            if t.service == service and t.status is TargetStatus.HEALTHY:
                if t.reverted_by is not None:
                    break
                return _Undo(run, t)
    return None


def _migrations_undone(
    history: list[Deployment], targets: list[Target]
) -> tuple[UndoneMigrations, ...]:
    """The deploys (newest first) whose change of a service this rollback takes back and that
    ran migrations: each deploy of the service still in effect, newer than the revision the
    rollback goes back to."""
    found: dict[str, UndoneMigrations] = {}
    for t in targets:
        if t.status is TargetStatus.SKIPPED:
            continue
        for run in history:
            if run.kind is not RunKind.DEPLOY:
                continue
            mine = next((x for x in run.active_targets if x.service == t.service), None)
            if mine is None or mine.reverted_by is not None:
                continue
            if mine.new_task_def == t.new_task_def:
                break  # the revision the rollback goes back to: older deploys stay
            if run.migrations and run.id not in found:
                found[run.id] = UndoneMigrations(
                    deployment_id=run.id, services=tuple(m.service for m in run.migrations)
                )
            if mine.previous_task_def == t.new_task_def:
                break
    return tuple(found.values())


def _newest_task_def(history: list[Deployment], service: str, version: str) -> str | None:
    """The newest recorded task definition that ran `version` of `service`."""
    for run in history:
        for t in run.active_targets:
            if t.service != service:
                continue
            if t.target_version == version and t.new_task_def:
                return t.new_task_def
            if t.current_version == version and t.previous_task_def:
                return t.previous_task_def
    return None


def _versions_hint(history: list[Deployment], service: str) -> str:
    seen: list[str] = []
    for run in history:
        for t in run.active_targets:
            if t.service == service:
                for v in (t.target_version, t.current_version):
                    if v and v not in seen:
                        seen.append(v)
    if not seen:
        return "No version of it is recorded there; deploy one with `/deploy`."
    return "Versions recorded there: " + ", ".join(f"`{v}`" for v in seen) + "."


def _closed_words(run: Deployment) -> str:
    closed = run.window_closed_at or run.rollback_deadline
    if run.reverted_by is not None:
        return f" (it was rolled back by `{run.reverted_by}`)"
    return f" at {closed.strftime('%H:%M UTC')}" if closed else ""
