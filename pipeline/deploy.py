"""The deploy engine: drives a run from APPROVED to a finished state.

It sequences the rollout (rolling services, then the canary services together), succeeds with
a rollback window, or moves the run to ROLLING_BACK and takes every service it changed back.
The steps themselves are in `pipeline/steps.py`, `pipeline/rolling.py`,
`pipeline/canary/rollout.py` and, for the way back, `pipeline/rollback.py`; each records its
start before acting and re-reads AWS before mutating, so a run re-attached after a restart
continues without doing anything twice. What a service runs now is read through
`pipeline/fleet.py`; the engine only runs, stops and resumes runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from pipeline.canary.rollout import CanaryStrategy
from pipeline.fleet import Fleet
from pipeline.gates import RunGates
from pipeline.health import HealthChecker
from pipeline.kernel.config import Config, Environment
from pipeline.kernel.errors import ChatOpsError, StageFailed
from pipeline.kernel.infra import RecordStore, Snapshots, Tasks
from pipeline.kernel.ports import Clock, Ecs, Notifier, TimerKind, Timers
from pipeline.kernel.text import counted
from pipeline.kernel.traffic import LoadBalancer, Metrics
from pipeline.preflight import Preflight
from pipeline.rollback import Rollback
from pipeline.rolling import RollingStrategy
from pipeline.steps import Steps, error_fields
from pipeline.tasks import first_done
from store.deploy.models import (
    Deployment,
    DeploymentState,
    RunKind,
    Target,
    TargetStatus,
)
from store.deploy.repository import Deployments
from store.deploy.stages import RolloutStages

log = logging.getLogger(__name__)

AfterSuccess = Callable[[Deployment], Awaitable[None]]

__all__ = ["DeployEngine", "window_timer"]


class DeployEngine:
    """Drives one deployment from APPROVED to a finished state. See `execute`."""

    def __init__(
        self,
        *,
        config: Config,
        deployments: Deployments,
        stages: RolloutStages,
        ecs: Ecs,
        fleet: Fleet,
        health: HealthChecker,
        notifier: Notifier,
        timers: Timers,
        clock: Clock,
        load_balancer: LoadBalancer,
        metrics: Metrics,
        preflight: Preflight,
        snapshots: Snapshots,
        tasks: Tasks,
        records: RecordStore,
    ) -> None:
        self._config = config
        self._deployments = deployments
        self._timers = timers
        self._clock = clock
        self._steps = Steps(
            config=config,
            deployments=deployments,
            ecs=ecs,
            fleet=fleet,
            health=health,
            notifier=notifier,
            clock=clock,
        )
        self._rolling = RollingStrategy(self._steps)
        self._canary = CanaryStrategy(
            self._steps, stages=stages, load_balancer=load_balancer, metrics=metrics
        )
        self._gates = RunGates(
            self._steps, preflight=preflight, snapshots=snapshots, tasks=tasks, records=records
        )
        self._rollback = Rollback(self._steps, rolling=self._rolling, canary=self._canary)
        self._after_success: list[AfterSuccess] = []

    def after_success(self, listener: AfterSuccess) -> None:
        """Call `listener` with each run that succeeds (after its card says so). A listener's
        failure is logged and stops nothing; a restart does not call it again (the listener's
        own sweep catches up)."""
        self._after_success.append(listener)

    async def retire_old_colours(self, deployment_id: str) -> list[str]:
        """After a canary deploy's rollback window: scale its old colours to 0 (once)."""
        run = await self._steps.require(deployment_id)
        if run.old_colours_retired_at is not None or run.reverted_by is not None:
            return []
        env = self._config.environment(run.environment)
        retired = await self._canary.retire(run, env)
        if retired:
            await self._deployments.set_fields(
                run.id, at=self._clock.now(), old_colours_retired_at=self._clock.now()
            )
        return retired

    async def execute(
        self,
        deployment_id: str,
        stop: asyncio.Event | None = None,
        wake: asyncio.Event | None = None,
    ) -> None:
        """Run (or resume) a deployment to its end. Touches ECS; never raises ChatOpsError.

        `stop` is set when someone moved the run to ROLLING_BACK while it rolls out (a
        `/rollback` of one of its services, Abort on a canary): the rollout stops at once and
        the rollback begins. `wake` is set when a canary's button (Hold, Resume, Promote)
        changed its stage.
        Cancellation (shutdown) records an `interrupted` event and re-raises; the run stays
        RUNNING/ROLLING_BACK so the next start re-attaches it.
        """
        run = await self._steps.require(deployment_id)
        env = self._config.environment(run.environment)
        stop = stop or asyncio.Event()
        try:
            if run.state is DeploymentState.APPROVED:
                run = await self._leave_approved(run, env)
            if run.state is DeploymentState.WAITING:
                if not await self._gates.wait(run, stop):
                    return  # cancelled during the wait
                if await self._deployments.transition(
                    run.id,
                    from_states=[DeploymentState.WAITING],
                    to=DeploymentState.RUNNING,
                    at=self._clock.now(),
                    started_at=self._clock.now(),
                    stage="preflight",
                ):
                    run = await self._steps.require(deployment_id)
                    await self._steps.event(run, "wait", "done")
                    await self._steps.notify_run(run)
                run = await self._steps.require(deployment_id)
            if run.state is DeploymentState.RUNNING and run.kind is RunKind.RESTORE:
                await self._restore(run, env)
                return
            if run.state is DeploymentState.RUNNING:
                failed = [t for t in run.active_targets if t.status is TargetStatus.FAILED]
                if failed:
                    # Stopped after a service failed but before the rollback began: finish
                    # what the failure started rather than trying that service again.
                    reason = failed[0].detail or f"`{failed[0].service}` failed"
                    if run.is_rollback:
                        await self._rollback.fail_rollback_run(run, reason)
                    else:
                        await self._rollback.start(run, reason)
                else:
                    await self._roll_out(run, stop, wake or asyncio.Event())
                run = await self._steps.require(deployment_id)
            if run.state is DeploymentState.ROLLING_BACK:
                await self._rollback.roll_back(run)
            finished = await self._steps.require(deployment_id)
            if finished.state.finished:
                await self._gates.write_records(finished, env)
        except asyncio.CancelledError:
            current = await self._deployments.get(deployment_id)
            if current is not None and not current.state.finished:
                await self._steps.event(
                    current, current.stage or "rollout", "interrupted", detail=_interrupted(current)
                )
            raise

    async def _leave_approved(self, run: Deployment, env: Environment) -> Deployment:
        """APPROVED -> WAITING (the environment's wait) or straight to RUNNING."""
        now = self._clock.now()
        if env.wait_s > 0 and run.kind is RunKind.DEPLOY:
            if await self._deployments.transition(
                run.id,
                from_states=[DeploymentState.APPROVED],
                to=DeploymentState.WAITING,
                at=now,
                wait_until=now + timedelta(seconds=env.wait_s),
                stage="wait",
            ):
                waiting = await self._steps.require(run.id)
                await self._steps.event(
                    waiting, "wait", "started", detail=f"{env.wait_s:g}s before the run starts"
                )
                await self._steps.notify_run(waiting)
            return await self._steps.require(run.id)
        first_stage = "restore" if run.kind is RunKind.RESTORE else "preflight"
        if await self._deployments.transition(
            run.id,
            from_states=[DeploymentState.APPROVED],
            to=DeploymentState.RUNNING,
            at=now,
            started_at=now,
            stage=first_stage,
        ):
            started = await self._steps.require(run.id)
            await self._steps.event(
                started,
                "rollout" if run.kind is not RunKind.RESTORE else "restore",
                "started",
                detail=counted(len(started.active_targets), "service"),
            )
            await self._steps.notify_run(started)
        return await self._steps.require(run.id)

    async def _restore(self, run: Deployment, env: Environment) -> None:
        try:
            await self._gates.restore(run, env)
        except ChatOpsError as exc:
            failed = await self._steps.end(
                run,
                DeploymentState.RUNNING,
                DeploymentState.ROLLBACK_FAILED,
                **error_fields(exc.line),
            )
            if failed is not None:
                await self._steps.notify_run(failed)
            return
        done = await self._steps.end(run, DeploymentState.RUNNING, DeploymentState.SUCCEEDED)
        if done is not None:
            await self._steps.notify_run(done)

    def _groups(self, env: Environment, targets: list[Target]) -> list[list[Target]]:
        """The deploy order: the environment's groups, then every other service."""
        by_name = {t.service: t for t in targets}
        groups = [[by_name[n] for n in group if n in by_name] for group in env.groups]
        listed = {n for group in env.groups for n in group}
        groups.append([t for t in targets if t.service not in listed])
        return [g for g in groups if g]

    async def _roll_out(self, run: Deployment, stop: asyncio.Event, wake: asyncio.Event) -> None:
        env = self._config.environment(run.environment)
        limit = asyncio.Semaphore(env.rollout.max_parallel)
        failure: ChatOpsError | None = None

        async def one(current: Deployment, target: Target) -> None:
            async with limit:
                await self._rolling.deploy(current, env, target)

        async def group(current: Deployment, members: list[Target]) -> None:
            async with asyncio.TaskGroup() as tg:
                for target in members:
                    if (
                        not self._steps.is_canary(env, target)
                        and target.status is not TargetStatus.HEALTHY
                    ):
                        tg.create_task(one(current, target))
            remaining = [t for t in members if self._steps.is_canary(env, t)]
            if current.is_rollback:
                # Inside the window the old colour still runs: going back is a flip.
                remaining = [
                    t
                    for t in remaining
                    if t.status is not TargetStatus.HEALTHY
                    and not await self._canary.revert(current, env, t)
                ]
            if remaining:
                await self._canary.release(current, env, remaining, wake)

        async def every_service() -> None:
            await self._gates.before_rollout(run, env)
            # The gates may have registered revisions (migrations): read the run again.
            current = await self._steps.require(run.id)
            # A failing group stops the later ones; the rollback takes back the earlier ones.
            for members in self._groups(env, list(current.active_targets)):
                await group(current, members)

        # The rollout races the stop signal; the losing task is cancelled and awaited here.
        results = await first_done(every_service(), stop.wait())
        if stop.is_set():
            return  # whoever stopped it moved the run to ROLLING_BACK and told people
        error = results[0]
        if isinstance(error, ChatOpsError):
            failure = error
        elif isinstance(error, BaseExceptionGroup):
            chatops = error.subgroup(ChatOpsError)
            if chatops is not None:
                failure = _first(chatops)
            else:
                log.error("rollout crashed", exc_info=error, extra={"deployment_id": run.id})
                failure = StageFailed("rollout", "An internal error stopped the rollout.")
        elif isinstance(error, BaseException):
            raise error
        now = self._clock.now()
        if failure is None:
            await self._succeed(run, env, now)
            return
        if run.kind is RunKind.ROLLBACK:
            await self._rollback.fail_rollback_run(run, failure.line)
            return
        await self._rollback.start(run, failure.line)

    async def _succeed(self, run: Deployment, env: Environment, now: datetime) -> None:
        window = env.rollback_window_s
        deadline = None
        if (
            run.kind is RunKind.DEPLOY
            and window > 0
            and all(t.previous_task_def for t in run.active_targets)
        ):
            deadline = now + timedelta(seconds=window)
        done = await self._steps.end(
            run,
            DeploymentState.RUNNING,
            DeploymentState.SUCCEEDED,
            at=now,
            rollback_deadline=deadline,
        )
        if done is None:
            return
        if deadline is not None:
            self._timers.arm(window_timer(run.id), deadline)
        await self._steps.event(done, "rollout", "succeeded")
        if done.kind is RunKind.ROLLBACK:
            await self._mark_reverted(done, now)
        await self._steps.notify_run(done)
        for listener in self._after_success:
            try:
                await listener(done)
            except Exception:
                log.exception("after-success listener failed", extra={"run_id": done.id})

    async def _mark_reverted(self, rollback: Deployment, now: datetime) -> None:
        """Each deploy a rollback took back says so (card redrawn); its window closes once
        every service of it is back."""
        by_deploy: dict[str, list[str]] = {}
        for t in rollback.active_targets:
            if t.reverts is not None:
                by_deploy.setdefault(t.reverts, []).append(t.service)
        for deploy_id, services in by_deploy.items():
            reverted = await self._deployments.mark_reverted(
                deploy_id, services=services, by=rollback.id, at=now
            )
            if reverted is not None:
                if reverted.window_closed_at is not None:
                    self._timers.disarm(window_timer(reverted.id))
                await self._steps.redraw(reverted)


_IN_MOTION = (
    TargetStatus.REGISTERED,
    TargetStatus.UPDATING,
    TargetStatus.STABLE,
    TargetStatus.ROLLING_BACK,
)


def _interrupted(run: Deployment) -> str:
    """What an interrupted run leaves behind, for the thread."""
    moving = [t for t in run.active_targets if t.status in _IN_MOTION]
    where = (
        "; ECS may still be rolling out "
        + ", ".join(f"`{t.service}` ({t.status.value.replace('_', ' ')})" for t in moving)
        if moving
        else ""
    )
    return f"the bot stopped{where}. The run resumes when the bot starts again."


# The timer that closes a deploy's rollback window.
window_timer = TimerKind.WINDOW.key


def _first(group: BaseExceptionGroup[ChatOpsError]) -> ChatOpsError:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first(exc)
        return exc
    raise RuntimeError("An exception group with no exceptions.")
