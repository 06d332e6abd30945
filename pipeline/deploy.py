"""The rolling ECS deploy: register, update, wait until steady, health-check; roll back on failure.

Every step records its start before acting and its result after, and re-reads ECS before
mutating, so a run re-attached after a restart continues without doing anything twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pipeline.health import HealthChecker
from pipeline.kernel.config import Config, Environment, Service, format_duration
from pipeline.kernel.errors import ChatOpsError, StageFailed
from pipeline.kernel.ports import Clock, Ecs, Notifier, Timers
from store.deploy.models import (
    Deployment,
    DeploymentState,
    RunKind,
    StageEvent,
    Target,
    TargetStatus,
)
from store.deploy.repository import Deployments

log = logging.getLogger(__name__)

NOTIFY_TIMEOUT_S = 10.0


def version_of(image: str) -> str | None:
    """The tag of an image reference (`repo/name:v1.2.3` -> `v1.2.3`), None when untagged."""
    name = image.rsplit("/", 1)[-1]
    if "@" in name or ":" not in name:
        return None
    return name.rsplit(":", 1)[1]


def repository_of(image: str) -> str:
    head, _, name = image.rpartition("/")
    name = name.split("@", 1)[0].split(":", 1)[0]
    return f"{head}/{name}" if head else name


@dataclass(frozen=True)
class RunningVersion:
    service: str
    task_definition: str
    image: str

    @property
    def version(self) -> str | None:
        return version_of(self.image)


class DeployEngine:
    """Drives one deployment from APPROVED to a finished state. See `execute`."""

    def __init__(
        self,
        *,
        config: Config,
        deployments: Deployments,
        ecs: Ecs,
        health: HealthChecker,
        notifier: Notifier,
        timers: Timers,
        clock: Clock,
    ) -> None:
        self._config = config
        self._deployments = deployments
        self._ecs = ecs
        self._health = health
        self._notifier = notifier
        self._timers = timers
        self._clock = clock

    async def running_version(self, env: Environment, service: Service) -> RunningVersion:
        """Read from ECS what `service` runs in `env`. Raises NotFound or UpstreamError."""
        status = await self._ecs.describe(
            region=env.region, cluster=env.cluster, service=service.ecs_service
        )
        image = await self._ecs.image_of(
            region=env.region, task_definition=status.task_definition, container=service.container
        )
        return RunningVersion(service.name, status.task_definition, image)

    async def execute(self, deployment_id: str, stop: asyncio.Event | None = None) -> None:
        """Run (or resume) a deployment to its end. Touches ECS; never raises ChatOpsError.

        `stop` is set when someone moved the run to ROLLING_BACK while it rolls out (a
        `/rollback` of one of its services): the rollout stops at once and the rollback begins.
        Cancellation (shutdown) records an `interrupted` event and re-raises; the run stays
        RUNNING/ROLLING_BACK so the next start re-attaches it.
        """
        run = await self._require(deployment_id)
        try:
            if run.state is DeploymentState.APPROVED:
                started = await self._deployments.transition(
                    run.id,
                    from_states=[DeploymentState.APPROVED],
                    to=DeploymentState.RUNNING,
                    at=self._clock.now(),
                    started_at=self._clock.now(),
                    stage="rollout",
                )
                run = await self._require(deployment_id)
                if started:
                    await self._event(
                        run, "rollout", "started", detail=f"{len(run.active_targets)} service(s)"
                    )
                    await self._notify_run(run)
            if run.state is DeploymentState.RUNNING:
                failed = [t for t in run.active_targets if t.status is TargetStatus.FAILED]
                if failed:
                    # Stopped after a service failed but before the rollback began: finish
                    # what the failure started rather than trying that service again.
                    reason = failed[0].detail or f"`{failed[0].service}` failed"
                    if run.is_rollback:
                        await self._fail_rollback_run(run, reason)
                    else:
                        await self._start_rollback(run, reason)
                else:
                    await self._roll_out(run, stop or asyncio.Event())
                run = await self._require(deployment_id)
            if run.state is DeploymentState.ROLLING_BACK:
                await self._roll_back(run)
        except asyncio.CancelledError:
            current = await self._deployments.get(deployment_id)
            if current is not None and not current.state.finished:
                await self._event(
                    current, current.stage or "rollout", "interrupted", detail=_interrupted(current)
                )
            raise

    async def _roll_out(self, run: Deployment, stop: asyncio.Event) -> None:
        env = self._config.environment(run.environment)
        limit = asyncio.Semaphore(env.rollout.max_parallel)
        failure: ChatOpsError | None = None

        async def one(target: Target) -> None:
            async with limit:
                await self._deploy_service(run, env, target)

        async def every_service() -> None:
            async with asyncio.TaskGroup() as tg:
                for target in run.active_targets:
                    if target.status is not TargetStatus.HEALTHY:
                        tg.create_task(one(target))

        # The rollout races the stop signal; the losing task is cancelled and awaited here.
        rollout = asyncio.create_task(every_service())
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({rollout, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (rollout, stopped):
                task.cancel()
            results = await asyncio.gather(rollout, stopped, return_exceptions=True)
        if stop.is_set():
            return  # whoever stopped it moved the run to ROLLING_BACK and told people
        error = results[0]
        if isinstance(error, BaseExceptionGroup):
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
            await self._fail_rollback_run(run, failure.user_message)
            return
        await self._start_rollback(run, failure.user_message)

    async def _succeed(self, run: Deployment, env: Environment, now: datetime) -> None:
        window = env.rollback_window_s
        deadline = None
        if (
            run.kind is RunKind.DEPLOY
            and window > 0
            and all(t.previous_task_def for t in run.active_targets)
        ):
            deadline = now + timedelta(seconds=window)
        if not await self._deployments.transition(
            run.id,
            from_states=[DeploymentState.RUNNING],
            to=DeploymentState.SUCCEEDED,
            at=now,
            finished_at=now,
            stage=None,
            rollback_deadline=deadline,
        ):
            return
        if deadline is not None:
            self._timers.arm(window_timer(run.id), deadline)
        done = await self._require(run.id)
        await self._event(done, "rollout", "succeeded")
        if done.kind is RunKind.ROLLBACK:
            await self._mark_reverted(done, now)
        await self._notify_run(done)

    async def _mark_reverted(self, rollback: Deployment, now: datetime) -> None:
        """Each deploy a rollback took back says so, and its window closes (card redrawn)."""
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
                await self._redraw(reverted)

    async def _fail_rollback_run(self, run: Deployment, reason: str) -> None:
        """A rollback that failed is not rolled forward again: it ends loudly, with the
        commands still to run by hand."""
        latest = await self._require(run.id)
        for t in latest.active_targets:
            if t.status is TargetStatus.FAILED:
                await self._deployments.update_target(
                    run.id, t.service, status=TargetStatus.ROLLBACK_FAILED
                )
        now = self._clock.now()
        if await self._deployments.transition(
            run.id,
            from_states=[DeploymentState.RUNNING],
            to=DeploymentState.ROLLBACK_FAILED,
            at=now,
            finished_at=now,
            stage=None,
            error=reason,
        ):
            done = await self._require(run.id)
            await self._event(done, "rollback", "failed", detail=reason)
            await self._notify_run(done)

    async def _start_rollback(self, run: Deployment, reason: str) -> None:
        if await self._deployments.transition(
            run.id,
            from_states=[DeploymentState.RUNNING],
            to=DeploymentState.ROLLING_BACK,
            at=self._clock.now(),
            stage="rollback",
            error=reason,
        ):
            failed = await self._require(run.id)
            await self._event(failed, "rollout", "failed", detail=reason)
            await self._notify_run(failed)

    async def _deploy_service(self, run: Deployment, env: Environment, target: Target) -> None:
        svc = self._config.service(target.service)
        try:
            if target.new_task_def is None or target.previous_task_def is None:
                current = await self.running_version(env, svc)
                previous = target.previous_task_def or current.task_definition
                await self._deployments.update_target(run.id, svc.name, previous_task_def=previous)
                image = f"{repository_of(svc.image or current.image)}:{target.target_version}"
                new_td = await self._ecs.register_with_image(
                    region=env.region,
                    task_definition=previous,
                    container=svc.container,
                    image=image,
                )
                await self._deployments.update_target(
                    run.id, svc.name, new_task_def=new_td, status=TargetStatus.REGISTERED
                )
                await self._event(
                    run,
                    "register",
                    "done",
                    service=svc.name,
                    detail=f"{_rev(new_td)} with image `{image}`",
                )
                target = target.model_copy(
                    update={"previous_task_def": previous, "new_task_def": new_td}
                )
            assert target.new_task_def is not None
            await self._deployments.update_target(run.id, svc.name, status=TargetStatus.UPDATING)
            await self._move_to(env, svc, target.new_task_def)
            await self._event(
                run,
                "update",
                "requested",
                service=svc.name,
                detail=f"service now on {_rev(target.new_task_def)}",
            )
            await self._wait_steady(run, env, svc, target.new_task_def)
            await self._deployments.update_target(run.id, svc.name, status=TargetStatus.STABLE)
            await self._event(
                run,
                "steady",
                "done",
                service=svc.name,
                detail="ECS runs the new revision on every task",
            )
            summary = await self._check_health(env, svc)
            await self._deployments.update_target(
                run.id, svc.name, status=TargetStatus.HEALTHY, detail=summary
            )
            await self._event(run, "health", "passed", service=svc.name, detail=summary)
        except ChatOpsError as exc:
            await self._deployments.update_target(
                run.id, svc.name, status=TargetStatus.FAILED, detail=exc.user_message
            )
            await self._event(
                run,
                getattr(exc, "stage", "rollout"),
                "failed",
                service=svc.name,
                detail=exc.user_message,
            )
            raise

    async def _move_to(self, env: Environment, svc: Service, task_definition: str) -> None:
        status = await self._ecs.describe(
            region=env.region, cluster=env.cluster, service=svc.ecs_service
        )
        if status.task_definition != task_definition:
            await self._ecs.update_service(
                region=env.region,
                cluster=env.cluster,
                service=svc.ecs_service,
                task_definition=task_definition,
            )

    async def _wait_steady(
        self, run: Deployment, env: Environment, svc: Service, task_definition: str
    ) -> None:
        deadline = self._clock.now().timestamp() + env.rollout.stable_timeout_s
        while True:
            status = await self._ecs.describe(
                region=env.region, cluster=env.cluster, service=svc.ecs_service
            )
            if status.rollout_failed:
                raise StageFailed(
                    "steady",
                    f"ECS gave up rolling out `{svc.name}`: "
                    f"{status.failure_reason or 'the deployment failed'}.",
                )
            if status.runs(task_definition):
                return
            if self._clock.now().timestamp() >= deadline:
                raise StageFailed(
                    "steady",
                    f"`{svc.name}` did not reach steady state within "
                    f"{format_duration(env.rollout.stable_timeout_s)} "
                    f"({status.running}/{status.desired} tasks running, "
                    f"{status.deployments} deployments active).",
                )
            await self._clock.sleep(env.rollout.poll_interval_s)

    async def _check_health(self, env: Environment, svc: Service) -> str:
        base = svc.health_url.get(env.name)
        if base is None:
            return "no health URL configured for this environment: checks skipped"
        paths = svc.health_paths or env.health.paths
        results = await self._health.check(
            service=svc.name, base_url=base, paths=paths, settings=env.health
        )
        return ", ".join(f"`{r.path}` {r.detail}" for r in results)

    async def _roll_back(self, run: Deployment) -> None:
        env = self._config.environment(run.environment)
        changed = [t for t in run.active_targets if await self._needs_rollback(env, t)]
        limit = asyncio.Semaphore(env.rollout.max_parallel)
        results: dict[str, str | None] = {}

        async def one(target: Target) -> None:
            async with limit:
                results[target.service] = await self._roll_back_service(run, env, target)

        async with asyncio.TaskGroup() as tg:
            for target in changed:
                tg.create_task(one(target))
        run = await self._require(run.id)
        failed = [t for t in run.active_targets if t.status is TargetStatus.ROLLBACK_FAILED]
        now = self._clock.now()
        final = DeploymentState.ROLLBACK_FAILED if failed else DeploymentState.ROLLED_BACK
        if await self._deployments.transition(
            run.id,
            from_states=[DeploymentState.ROLLING_BACK],
            to=final,
            at=now,
            finished_at=now,
            stage=None,
        ):
            done = await self._require(run.id)
            await self._event(
                done,
                "rollback",
                "failed" if failed else "done",
                detail=", ".join(t.service for t in failed) or None,
            )
            await self._notify_run(done)

    async def _needs_rollback(self, env: Environment, t: Target) -> bool:
        """Whether `t` must go back: it was (maybe) updated, or ECS runs its new revision
        anyway (a rollout stopped while its UpdateService was still in flight)."""
        if t.status is TargetStatus.ROLLED_BACK or t.previous_task_def is None:
            return False
        if t.changed_ecs:
            return True
        if t.new_task_def is None:
            return False
        svc = self._config.service(t.service)
        status = await self._ecs.describe(
            region=env.region, cluster=env.cluster, service=svc.ecs_service
        )
        return status.task_definition == t.new_task_def

    async def _roll_back_service(
        self, run: Deployment, env: Environment, target: Target
    ) -> str | None:
        svc = self._config.service(target.service)
        assert target.previous_task_def is not None
        await self._deployments.update_target(run.id, svc.name, status=TargetStatus.ROLLING_BACK)
        await self._event(
            run,
            "rollback",
            "started",
            service=svc.name,
            detail=f"back to {_rev(target.previous_task_def)}",
        )
        try:
            await self._move_to(env, svc, target.previous_task_def)
            await self._wait_steady(run, env, svc, target.previous_task_def)
            summary = await self._check_health(env, svc)
        except ChatOpsError as exc:
            await self._deployments.update_target(
                run.id, svc.name, status=TargetStatus.ROLLBACK_FAILED, detail=exc.user_message
            )
            await self._event(run, "rollback", "failed", service=svc.name, detail=exc.user_message)
            return exc.user_message
        await self._deployments.update_target(
            run.id, svc.name, status=TargetStatus.ROLLED_BACK, detail=summary
        )
        await self._event(run, "rollback", "done", service=svc.name, detail=summary)
        return None

    async def _require(self, deployment_id: str) -> Deployment:
        run = await self._deployments.get(deployment_id)
        if run is None:
            raise RuntimeError(f"Deployment {deployment_id} vanished from the store.")
        return run

    async def _event(
        self,
        run: Deployment,
        stage: str,
        status: str,
        *,
        service: str | None = None,
        detail: str | None = None,
    ) -> None:
        event = StageEvent(
            deployment_id=run.id,
            at=self._clock.now(),
            stage=stage,
            status=status,
            service=service,
            detail=detail,
        )
        await self._deployments.record_event(event)
        await _quietly(lambda: self._notifier.stage_changed(run, event), "stage_changed", run)

    async def _redraw(self, run: Deployment) -> None:
        await _quietly(lambda: self._notifier.redraw(run), "redraw", run)

    async def _notify_run(self, run: Deployment) -> None:
        await _quietly(lambda: self._notifier.run_changed(run), "run_changed", run)


async def _quietly(call: Callable[[], Awaitable[None]], what: str, run: Deployment) -> None:
    """A chat failure must never stop a deploy: the store already holds the truth."""
    try:
        async with asyncio.timeout(NOTIFY_TIMEOUT_S):
            await call()
    except Exception:
        log.warning("notifier %s failed", what, exc_info=True, extra={"deployment_id": run.id})


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


def window_timer(deployment_id: str) -> str:
    """The timer that closes a deploy's rollback window."""
    return f"window:{deployment_id}"


def _first(group: BaseExceptionGroup[ChatOpsError]) -> ChatOpsError:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first(exc)
        return exc
    raise RuntimeError("An exception group with no exceptions.")


def _rev(task_definition: str) -> str:
    return "`" + task_definition.rsplit("/", 1)[-1] + "`"
