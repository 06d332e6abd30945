"""The rolling ECS deploy: register, update, wait until steady, health-check; roll back on failure.

Every step records its start before acting and its result after, and re-reads ECS before
mutating, so a run re-attached after a restart continues without doing anything twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pipeline.health import HealthChecker
from pipeline.kernel.config import Config, Environment, Service, format_duration
from pipeline.kernel.errors import ChatOpsError, StageFailed
from pipeline.kernel.ports import Clock, Ecs, Notifier
from store.deploy.models import Deployment, DeploymentState, StageEvent, Target, TargetStatus
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
        clock: Clock,
    ) -> None:
        self._config = config
        self._deployments = deployments
        self._ecs = ecs
        self._health = health
        self._notifier = notifier
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

    async def execute(self, deployment_id: str) -> None:
        """Run (or resume) a deployment to its end. Touches ECS; never raises ChatOpsError.

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
                    await self._start_rollback(
                        run, failed[0].detail or f"`{failed[0].service}` failed"
                    )
                else:
                    await self._roll_out(run)
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

    async def _roll_out(self, run: Deployment) -> None:
        env = self._config.environment(run.environment)
        limit = asyncio.Semaphore(env.rollout.max_parallel)
        failure: ChatOpsError | None = None

        async def one(target: Target) -> None:
            async with limit:
                await self._deploy_service(run, env, target)

        try:
            async with asyncio.TaskGroup() as tg:
                for target in run.active_targets:
                    if target.status is not TargetStatus.HEALTHY:
                        tg.create_task(one(target))
        except* ChatOpsError as group:
            failure = group.exceptions[0]  # type: ignore[assignment]
        except* Exception as group:
            log.error(
                "rollout crashed", exc_info=group.exceptions[0], extra={"deployment_id": run.id}
            )
            failure = StageFailed("rollout", "An internal error stopped the rollout.")
        now = self._clock.now()
        if failure is None:
            if await self._deployments.transition(
                run.id,
                from_states=[DeploymentState.RUNNING],
                to=DeploymentState.SUCCEEDED,
                at=now,
                finished_at=now,
                stage=None,
            ):
                done = await self._require(run.id)
                await self._event(done, "rollout", "succeeded")
                await self._notify_run(done)
            return
        await self._start_rollback(run, failure.user_message)

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
                    deployment_id=run.id,
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
        changed = [
            t
            for t in run.active_targets
            if t.changed_ecs
            and t.status is not TargetStatus.ROLLED_BACK
            and t.previous_task_def is not None
        ]
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


def _rev(task_definition: str) -> str:
    return "`" + task_definition.rsplit("/", 1)[-1] + "`"
