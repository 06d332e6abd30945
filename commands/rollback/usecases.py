"""`/rollback`, the start of every rollback run, and the requester's confirmation question.

A rollback is a run (`kind = rollback`) like a deploy: its targets go from what ECS runs now to
a task definition the records say ran before (`history.py`). Inside a deploy's rollback window
it needs no approval (rollback is the safe direction); after the window it is a deploy of the
older version and needs the environment's approvals. A rollback of a service that a deploy is
rolling out right now stops that deploy, which then rolls back everything it changed. The Roll
back buttons (`buttons.py`) start their runs here too; `window.py` closes the windows.
"""

from __future__ import annotations

import asyncio

from commands.access import Access
from commands.exchange import Answer, Click, Invocation, Later, Outcome
from commands.parsing import Help
from commands.rollback.approvers import WarRoomApprovers
from commands.rollback.history import (
    last_change,
    last_deploy_services,
    migrations_undone,
    newest_task_def,
    versions_hint,
    within_window,
)
from commands.rollback.parse import RollbackRequest, parse_rollback, usage
from commands.rollback.replies import RollbackPrompt
from commands.runs.lifecycle import Runs
from commands.runs.records import new_request
from pipeline.fleet import Fleet, RunningVersion
from pipeline.kernel.config import Config, Environment
from pipeline.kernel.errors import (
    ChatOpsError,
    Forbidden,
    NotFound,
    UsageError,
    options,
)
from pipeline.kernel.ports import Clock
from pipeline.kernel.text import Line, People, Person, counted, line
from pipeline.runner import Runner
from pipeline.steps import error_fields, stage_event
from store.deploy.models import (
    Deployment,
    DeploymentState,
    RunKind,
    Target,
    TargetStatus,
    UndoneMigrations,
)
from store.deploy.repository import Deployments

# A confirmation question stays open this long; a later click is refused as stale.
CONFIRM_TIMEOUT_S = 600.0


class RollbackCommands:
    """What `/rollback` does, how a rollback run starts, and its confirmation question."""

    def __init__(
        self,
        *,
        config: Config,
        deployments: Deployments,
        runs: Runs,
        fleet: Fleet,
        runner: Runner,
        access: Access,
        clock: Clock,
        approvers: WarRoomApprovers | None = None,
    ) -> None:
        self._config = config
        # Asked for often, the same while the bot runs: built once (and so drawn once).
        self._help = usage(config)
        self._deployments = deployments
        self._runs = runs
        self._fleet = fleet
        self._runner = runner
        self._access = access
        self._clock = clock
        self._approvers = approvers

    # -- /rollback -------------------------------------------------------------------------

    async def on_command(self, inv: Invocation) -> Answer:
        """Answer `/rollback …`. Raises UsageError or Forbidden (nothing changes)."""
        parsed = parse_rollback(inv.text, self._config)
        if isinstance(parsed, Help):
            return Outcome(reply=self._help, audit="help")
        request = parsed
        env = self._config.environment(request.environment)
        await self.authorize(env, inv.user_id)

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
        services = request.services or last_deploy_services(history, env.name)
        targets = await self._plan(env, services, request.version, history)
        within = within_window(targets, history, now=self._clock.now())
        return await self.begin(
            env,
            targets,
            user_id=user_id,
            channel_id=channel_id,
            reason=request.reason,
            version=request.version,
            confirmed=request.confirmed,
            needs_approvals=not within,
            migrated=migrations_undone(history, targets),
        )

    async def _holder(
        self, env: Environment, services: tuple[str, ...] | None
    ) -> Deployment | None:
        names = services or tuple(self._config.services)
        holder_id = await self._deployments.running_for(env.name, names)
        if holder_id is None:
            return None
        holder = await self._runs.get(holder_id)
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
        who = Person(user_id)
        why = (
            line("stopped by {who} with `/rollback`: {reason}", who=who, reason=reason)
            if reason
            else line("stopped by {who} with `/rollback`", who=who)
        )
        moved = await self._deployments.transition(
            holder.id,
            from_states=[DeploymentState.APPROVED, DeploymentState.RUNNING],
            to=DeploymentState.ROLLING_BACK,
            at=now,
            stage="rollback",
            **error_fields(why),
        )
        if not moved:
            latest = await self._runs.get(holder.id)
            raise ChatOpsError(
                "Deployment `{id}` finished while you asked ({state}); nothing was changed. "
                "Run `/rollback` again if it still needs to go back.",
                id=holder.id,
                state=latest.state.words,
            )
        await self._runs.said(holder, "rollback", "requested", why)
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
            cards=(await self._runs.get(holder.id),),
            audit="stopped the deploy",
            ref=holder.id,
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
            now_on = [tg.create_task(self._fleet.running_version(env, s)) for s in svcs]
        targets = []
        for svc, task in zip(svcs, now_on, strict=True):
            current: RunningVersion = task.result()
            undo = last_change(history, svc.name)
            if version is None:
                if undo is None or undo.target.previous_task_def is None:
                    raise UsageError(
                        "`{service}` has no previous version in `{env}`: no deploy of it "
                        "succeeded there that was not rolled back already. {ran}",
                        service=svc.name,
                        env=env.name,
                        ran=versions_hint(history, svc.name),
                    )
                to_version = undo.target.current_version
                to_task_def = undo.target.previous_task_def
            else:
                found = newest_task_def(history, svc.name, version)
                if found is None:
                    raise UsageError(
                        "`{service}` never ran `{version}` in `{env}` as far as the records go. "
                        "{ran}",
                        service=svc.name,
                        version=version,
                        env=env.name,
                        ran=versions_hint(history, svc.name),
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

    # -- starting a rollback: /rollback and the Roll back buttons (buttons.py) ------------

    async def authorize(self, env: Environment, user_id: str) -> None:
        """Pass when `user_id` may roll back in `env` (`Environment.may_roll_back_ids`).
        Raises Forbidden otherwise, before anything is changed."""
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

    async def begin(
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
        code, so that question is never skipped).

        Returns the question (`RollbackPrompt`) or what publishing the card returned. Raises
        ChatOpsError, with nothing recorded, when every target already runs its version.
        """
        active = [t for t in targets if t.status is not TargetStatus.SKIPPED]
        if not active:
            raise ChatOpsError(
                "Nothing to roll back: {services} already run the version asked for in `{env}`.",
                services=", ".join(f"`{t.service}` {t.current_version}" for t in targets),
                env=env.name,
            )
        reverted = {t.reverts for t in active}
        ask = not confirmed or bool(migrated)
        run = new_request(
            env,
            kind=RunKind.ROLLBACK,
            requested_by=user_id,
            channel_id=channel_id,
            now=self._clock.now(),
            approvals=env.required_approvals if needs_approvals else 0,
            confirm_within_s=CONFIRM_TIMEOUT_S if ask else None,
            version=version,
            targets=targets,
            reverts=reverted.pop() if len(reverted) == 1 else None,
            reason=reason,
            undoes_migrations=migrated,
        )
        await self._deployments.create(run)
        if not ask or (run.required_approvals and not migrated):
            return await self._publish(run)
        self._runs.arm_timer(run)
        prompt = RollbackPrompt(run, asked_despite_yes=confirmed)
        return Outcome(reply=prompt, audit="asked to confirm", ref=run.id)

    async def _publish(self, run: Deployment) -> Outcome:
        """Post the run's card, once the approvers it mentions can read it there."""
        if self._approvers is not None:
            await self._approvers.bring(run)
        return await self._runs.publish(run)

    # -- the confirmation question -----------------------------------------------------------

    async def on_confirm(self, click: Click) -> Outcome:
        """The requester's **Roll back**: checks the question is still current, then starts."""
        run = await self._pending(click)
        env = self._config.environment(run.environment)
        for t in run.active_targets:
            now_on = await self._fleet.running_version(env, self._config.service(t.service))
            if now_on.task_definition != t.previous_task_def:
                await self._runs.cancel(run.id, reason="stale confirmation")
                raise Forbidden(
                    "`{service}` changed since you asked (it now runs {now}), so I cancelled "
                    "this rollback. Type `/rollback` again to see what it would do now.",
                    service=t.service,
                    now=now_on.version or "another revision",
                )
        self._runs.disarm_timer(run.id)
        history = await self._deployments.succeeded(environment=env.name)
        migrated = migrations_undone(history, list(run.targets))
        if migrated:
            # The requester saw the database warning and went on: the timeline says so.
            knowing = line(
                "by {who}, knowing the database stays as {what}",
                who=Person(click.user_id),
                what=", ".join(f"deployment {m.deployment_id} migrated it" for m in migrated),
            )
            await self._deployments.record_event(
                stage_event(run, "confirm", "done", knowing, at=self._clock.now())
            )
        outcome = await self._publish(run)
        if outcome.error is not None:
            return outcome
        if run.required_approvals:
            return Outcome(
                reply=line(
                    "📋 Rollback `{id}` is planned: its card in this channel needs {n} in `{env}`.",
                    id=run.id,
                    n=counted(run.required_approvals, "approval"),
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
        await self._runs.cancel(
            run.id, reason=line("{who} cancelled it", who=Person(click.user_id))
        )
        return Outcome(
            reply=Line.literal("Cancelled: nothing was rolled back."),
            audit="cancelled",
            ref=run.id,
            replace=True,
        )

    async def _pending(self, click: Click) -> Deployment:
        run = await self._runs.get(click.value)
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
            await self._runs.expire(run.id)
            run = await self._runs.get(run.id)
        # A rollback that needs approvals is asked about only before its card is posted (the
        # deploy it takes back ran migrations); once posted, the approvers decide.
        posted = run.required_approvals and run.message_ts is not None
        if run.state is not DeploymentState.AWAITING_APPROVAL or posted:
            raise Forbidden(
                "This question is stale: rollback `{id}` is already {state}. Nothing was "
                "changed; type `/rollback` again if you still need it.",
                id=run.id,
                state=run.state.words,
            )
        return run
