"""The gates people steer by hand: environment locks, the wait timer's Cancel button, a look at
an environment (`/deploy status <environment>`), and guarded database restores.

Locks follow hubot-deploy and Shipit: the holder may deploy, anyone else is refused with who,
why, since and until when; a lock ends by `/deploy unlock` (the holder, or an approver, which
is recorded) or on time, also across a restart (a timer per lock, re-armed at start-up).
"""

from __future__ import annotations

from datetime import timedelta

from commands.access import Access
from commands.exchange import Answer, Click, Invocation, Later, Outcome
from commands.gates.parse import (
    EnvironmentStatus,
    GateCommand,
    LockRequest,
    RestoreRequest,
    UnlockRequest,
)
from commands.gates.replies import EnvironmentView
from commands.runs.lifecycle import Runs
from commands.runs.records import new_deployment_id, new_request
from pipeline.kernel.config import Config, format_duration
from pipeline.kernel.errors import Forbidden, UsageError
from pipeline.kernel.ports import Clock, TimerKind, Timers
from pipeline.kernel.text import People, Person, line
from pipeline.preflight import lock_line
from pipeline.runner import Runner
from pipeline.steps import error_fields
from store.deploy.locks import Locks
from store.deploy.models import (
    DeploymentState,
    Restore,
    RunKind,
)
from store.deploy.repository import Deployments

lock_timer = TimerKind.LOCK.key


class GateCommands:
    """What `/deploy lock|unlock|restore-db|status <environment>` and the wait's Cancel do."""

    def __init__(
        self,
        *,
        config: Config,
        deployments: Deployments,
        locks: Locks,
        runs: Runs,
        runner: Runner,
        access: Access,
        timers: Timers,
        clock: Clock,
    ) -> None:
        self._config = config
        self._deployments = deployments
        self._locks = locks
        self._runs = runs
        self._runner = runner
        self._access = access
        self._timers = timers
        self._clock = clock

    async def answer(self, parsed: GateCommand, inv: Invocation) -> Answer:
        """Answer a parsed `/deploy` request about a gate: an environment, a lock, a restore."""
        if isinstance(parsed, EnvironmentStatus):
            return Outcome(reply=await self.environment(parsed.environment))
        if isinstance(parsed, LockRequest):
            return await self.lock(parsed, user_id=inv.user_id)
        if isinstance(parsed, UnlockRequest):
            return await self.unlock(parsed, user_id=inv.user_id)
        request = parsed

        async def restore() -> Outcome:
            return await self.restore(request, user_id=inv.user_id, channel_id=inv.channel_id)

        return Later(restore)

    # -- an environment ------------------------------------------------------------------

    async def environment(self, name: str) -> EnvironmentView:
        env = self._config.environment(name)
        now = self._clock.now()
        lock = await self._locks.get(env.name)
        freeze = env.schedule.freeze_at(now)
        runs = await self._deployments.in_states(s for s in DeploymentState if s.in_flight)
        return EnvironmentView(
            environment=env.name,
            now=now,
            lock=lock if lock is not None and lock.active(now) else None,
            open_now=env.schedule.open_at(now),
            next_open=None if env.schedule.open_at(now) else env.schedule.next_open(now),
            freeze=f"{freeze.start} to {freeze.end}: {freeze.reason}" if freeze else None,
            windows=tuple(env.schedule.windows),
            timezone=env.schedule.timezone,
            in_flight=tuple(r for r in runs if r.environment == env.name),
        )

    # -- locks ---------------------------------------------------------------------------

    async def lock(self, request: LockRequest, *, user_id: str) -> Outcome:
        """Take the environment's lock. Refused (naming the holder) when someone holds it, and
        (naming who can) when the user may neither deploy, approve nor roll back there."""
        env = self._config.environment(request.environment)
        allowed = env.may_lock_ids()
        if allowed and not await self._access.is_member(user_id, allowed):
            raise Forbidden(
                "Only those who may deploy, approve or roll back in `{env}` can lock it: {who}. "
                "Nothing was changed.",
                env=env.name,
                who=People.of(allowed),
            )
        now = self._clock.now()
        until = now + timedelta(seconds=request.duration_s) if request.duration_s else None
        held = await self._locks.take(
            request.environment, holder=user_id, reason=request.reason, at=now, until=until
        )
        if held is not None:
            raise Forbidden(lock_line(held).then("Nothing was changed."))
        if until is not None:
            self._timers.arm(lock_timer(request.environment), until)
        for_how_long = f" for {format_duration(request.duration_s or 0)}" if until else ""
        return Outcome(
            reply=line(
                "🔒 {who} locked `{env}`{how_long}: {reason}. Other people's deploys there are "
                "refused until `/deploy unlock {env}`.",
                who=Person(user_id),
                env=request.environment,
                how_long=for_how_long,
                reason=request.reason or "no reason given",
            ),
            announce=True,
            audit="locked",
            ref=request.environment,
        )

    async def unlock(self, request: UnlockRequest, *, user_id: str) -> Outcome:
        """End the lock: its holder may; an approver may end anyone's (recorded)."""
        env = self._config.environment(request.environment)
        now = self._clock.now()
        lock = await self._locks.get(env.name)
        if lock is None or not lock.active(now):
            raise UsageError("`{env}` is not locked; nothing was changed.", env=env.name)
        by_approver = lock.holder != user_id
        if by_approver and not await self._access.is_member(user_id, env.approvers):
            raise Forbidden(
                lock_line(lock).then(
                    "Only {holder} or an approver of `{env}` can unlock it; nothing was changed.",
                    holder=Person(lock.holder),
                )
            )
        await self._locks.release(env.name, since=lock.since)
        self._timers.disarm(lock_timer(env.name))
        # The holder is named as a person (a mention), never as a raw ID.
        said = (
            line(
                "🔓 {who} unlocked `{env}` ({holder}'s lock).",
                who=Person(user_id),
                env=env.name,
                holder=Person(lock.holder),
            )
            if by_approver
            else line("🔓 {who} unlocked `{env}`.", who=Person(user_id), env=env.name)
        )
        return Outcome(
            reply=said,
            announce=True,
            audit=f"unlocked the lock of {lock.holder}" if by_approver else "unlocked",
            ref=env.name,
        )

    async def expire_lock(self, environment: str) -> bool:
        """At a lock's end: remove it (once). False when it is not due or already gone."""
        lock = await self._locks.get(environment)
        now = self._clock.now()
        if lock is None or lock.until is None:
            return False
        if now < lock.until:
            self._timers.arm(lock_timer(environment), lock.until)
            return False
        return await self._locks.release(environment, since=lock.since)

    async def arm_timers(self) -> int:
        armed = 0
        for lock in await self._locks.all():
            if lock.until is not None:
                self._timers.arm(lock_timer(lock.environment), lock.until)
                armed += 1
        return armed

    # -- the wait ------------------------------------------------------------------------

    async def on_cancel_wait(self, click: Click) -> Outcome:
        """Cancel during the wait after approval: the requester or an approver."""
        run = await self._runs.get(click.value)
        env = self._config.environment(run.environment)
        if click.user_id != run.requested_by and not await self._access.is_member(
            click.user_id, env.approvers
        ):
            raise Forbidden(
                "Only {requester} or an approver of `{env}` can cancel it; your click changed "
                "nothing.",
                requester=Person(run.requested_by),
                env=env.name,
            )
        now = self._clock.now()
        why = line("{who} cancelled it during the wait", who=Person(click.user_id))
        if not await self._deployments.transition(
            run.id,
            from_states=[DeploymentState.WAITING],
            to=DeploymentState.CANCELLED,
            at=now,
            finished_at=now,
            **error_fields(why),
        ):
            raise Forbidden(
                "Deployment `{id}` is no longer waiting ({state}); your click changed nothing.",
                id=run.id,
                state=run.state.words,
            )
        self._runner.stop(run.id)
        await self._runs.said(run, "wait", "cancelled", line("by {who}", who=Person(click.user_id)))
        await self._runs.ended(run.id)
        return Outcome(cards=(await self._runs.get(run.id),), audit="cancelled", ref=run.id)

    # -- database restores ---------------------------------------------------------------

    async def restore(self, request: RestoreRequest, *, user_id: str, channel_id: str) -> Outcome:
        """Plan a restore of a deploy's snapshot to a NEW instance; it needs the environment's
        approvals. Refused when the deploy took no backup."""
        source = await self._runs.get(request.deployment_id)
        env = self._config.environment(source.environment)
        if source.backup_id is None:
            raise UsageError(
                "Deployment `{id}` took no database backup (it ran no migration, or `{env}` has "
                "no `database`), so there is nothing to restore.",
                id=source.id,
                env=env.name,
            )
        if env.database is None:
            raise UsageError(
                "`{env}` has no `database` in chatops.toml any more; nothing to restore to.",
                env=env.name,
            )
        now = self._clock.now()
        run_id = new_deployment_id(now)
        run = new_request(
            env,
            kind=RunKind.RESTORE,
            requested_by=user_id,
            channel_id=channel_id,
            now=now,
            run_id=run_id,
            restore=Restore(
                snapshot=source.backup_id,
                # Each restore gets an instance of its own: a second restore of the same
                # backup must not hand back the first one's (maybe changed) instance.
                instance=f"restore-{source.id}-{run_id.rsplit('-', 1)[-1]}"[:63],
                source=env.database.instance,
                deployment=source.id,
            ),
        )
        await self._deployments.create(run)
        return await self._runs.publish(run)
