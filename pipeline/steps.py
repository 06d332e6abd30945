"""The steps every rollout strategy takes: read what ECS runs, register a revision, move a
service, wait until ECS runs it on every task, check health endpoints, and keep the run's
timeline (the store first, then the Notifier).

Waits poll on the injected clock. Chat failures never stop a run: the store holds the truth.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from pipeline.fleet import Fleet, RunningVersion
from pipeline.health import HealthChecker
from pipeline.kernel.config import Config, Environment, Service, format_duration
from pipeline.kernel.errors import ChatOpsError, StageFailed
from pipeline.kernel.ports import Clock, Ecs, Notifier, ServiceStatus
from pipeline.kernel.text import Line
from store.deploy.models import Deployment, DeploymentState, StageEvent, Target, TargetStatus
from store.deploy.repository import Deployments

log = logging.getLogger(__name__)

NOTIFY_TIMEOUT_S = 10.0
# How long a RegisterTaskDefinition sent by a process that died may still land: the ECS
# client's connect and read timeouts (pipeline/aws/ecs.py), after which that process would
# have given up on its answer. A restarted run looks for the revision until then (issue 16).
REGISTER_SETTLE_S = 40.0
REGISTER_POLL_S = 2.0


def error_fields(reason: str | Line) -> dict[str, Any]:
    """A run's `error` and `error_line` columns for `reason`: a sentence that names people is
    kept as such, so the card can mention them."""
    if isinstance(reason, Line):
        return {"error": reason.plain(), "error_line": reason.dumps()}
    return {"error": reason, "error_line": None}


def stage_event(
    run: Deployment,
    stage: str,
    status: str,
    detail: str | Line | None = None,
    *,
    at: datetime,
    service: str | None = None,
) -> StageEvent:
    """An event of `run`'s timeline; a detail that names people is kept as such, so the
    thread can mention them."""
    return StageEvent(
        deployment_id=run.id,
        at=at,
        stage=stage,
        status=status,
        service=service,
        detail=detail.plain() if isinstance(detail, Line) else detail,
        detail_line=detail.dumps() if isinstance(detail, Line) else None,
    )


def repository_of(image: str) -> str:
    head, _, name = image.rpartition("/")
    name = name.split("@", 1)[0].split(":", 1)[0]
    return f"{head}/{name}" if head else name


def rev(task_definition: str) -> str:
    """A task definition as the thread shows it: `family:revision`."""
    return "`" + task_definition.rsplit("/", 1)[-1] + "`"


class Steps:
    """ECS, health and timeline steps shared by the rolling and canary strategies."""

    def __init__(
        self,
        *,
        config: Config,
        deployments: Deployments,
        ecs: Ecs,
        fleet: Fleet,
        health: HealthChecker,
        notifier: Notifier,
        clock: Clock,
    ) -> None:
        self.config = config
        self.deployments = deployments
        self.ecs = ecs
        self.fleet = fleet
        self.health = health
        self.notifier = notifier
        self.clock = clock

    async def running_version(
        self, env: Environment, service: Service, *, ecs_service: str | None = None
    ) -> RunningVersion:
        """Read from ECS what `service`'s own ECS service (or `ecs_service`, one of its
        colours) runs. Raises NotFound or UpstreamError."""
        return await self.fleet.version_on(env, service, ecs_service or service.ecs_service)

    async def describe(self, env: Environment, ecs_service: str) -> ServiceStatus:
        return await self.fleet.describe(env, ecs_service)

    async def register(
        self, run: Deployment, env: Environment, svc: Service, *, based_on: str, image: str
    ) -> str:
        """Register a copy of `based_on` running `image`; its ARN, recorded in the timeline."""
        new_td = await self.ecs.register_with_image(
            region=env.region,
            task_definition=based_on,
            container=svc.container,
            image=image,
            deployment_id=run.id,
        )
        await self.event(
            run, "register", "done", service=svc.name, detail=f"{rev(new_td)} with image `{image}`"
        )
        return new_td

    async def register_target(
        self, run: Deployment, env: Environment, svc: Service, target: Target, *, based_on: str
    ) -> Target:
        """Register `target`'s new revision (a copy of `based_on` with the new image), once:
        a target that has one already is returned as it is."""
        if target.new_task_def is not None and target.previous_task_def is not None:
            return target
        previous = target.previous_task_def or based_on
        await self.deployments.update_target(run.id, svc.name, previous_task_def=previous)
        running = await self.ecs.image_of(
            region=env.region, task_definition=previous, container=svc.container
        )
        image = f"{repository_of(svc.image or running)}:{target.target_version}"
        await self._await_registration_in_flight(run, env, svc, based_on=previous)
        await self.deployments.record_event(
            stage_event(run, "register", "started", at=self.clock.now(), service=svc.name)
        )
        new_td = await self.register(run, env, svc, based_on=previous, image=image)
        await self.deployments.update_target(
            run.id, svc.name, new_task_def=new_td, status=TargetStatus.REGISTERED
        )
        return target.model_copy(update={"previous_task_def": previous, "new_task_def": new_td})

    async def _await_registration_in_flight(
        self, run: Deployment, env: Environment, svc: Service, *, based_on: str
    ) -> None:
        """When a process that died had sent this service's RegisterTaskDefinition (started,
        never done), wait until its revision shows up or the call can no longer land, so the
        registration that follows reuses it instead of making a second revision."""
        events = [
            e
            for e in await self.deployments.events(run.id)
            if e.stage == "register" and e.service == svc.name
        ]
        if not events or events[-1].status != "started":
            return
        deadline = events[-1].at.timestamp() + REGISTER_SETTLE_S
        while True:
            found = await self.ecs.find_registered(
                region=env.region, task_definition=based_on, deployment_id=run.id
            )
            left = deadline - self.clock.now().timestamp()
            if found is not None or left <= 0:
                return
            log.info(
                "waiting up to %.0fs for the revision of %s registered before a restart",
                left,
                svc.name,
                extra={"deployment_id": run.id},
            )
            await self.clock.sleep(min(REGISTER_POLL_S, left))

    async def move_to(
        self,
        env: Environment,
        ecs_service: str,
        *,
        task_definition: str | None = None,
        desired: int | None = None,
    ) -> None:
        """Send UpdateService only for what differs (so a resumed run sends nothing twice)."""
        status = await self.describe(env, ecs_service)
        td = task_definition if task_definition not in (None, status.task_definition) else None
        count = desired if desired not in (None, status.desired) else None
        if td is not None or count is not None:
            await self.ecs.update_service(
                region=env.region,
                cluster=env.cluster,
                service=ecs_service,
                task_definition=td,
                desired=count,
            )

    async def wait_steady(
        self, env: Environment, ecs_service: str, *, label: str, task_definition: str
    ) -> None:
        """Poll until every task runs `task_definition`. Raises StageFailed on ECS's failure
        or after the environment's `stable_timeout`."""
        deadline = self.clock.now().timestamp() + env.rollout.stable_timeout_s
        while True:
            status = await self.describe(env, ecs_service)
            if status.rollout_failed:
                raise StageFailed(
                    "steady",
                    f"ECS gave up rolling out `{label}`: "
                    f"{status.failure_reason or 'the deployment failed'}.",
                )
            if status.runs(task_definition):
                return
            if self.clock.now().timestamp() >= deadline:
                raise StageFailed(
                    "steady",
                    f"`{label}` did not reach steady state within "
                    f"{format_duration(env.rollout.stable_timeout_s)} "
                    f"({status.running}/{status.desired} tasks running, "
                    f"{status.deployments} deployments active).",
                )
            await self.clock.sleep(env.rollout.poll_interval_s)

    async def check_health(
        self, env: Environment, svc: Service, *, base_url: str | None = None
    ) -> str:
        """The environment's health checks of `svc` (at `base_url`, default its health URL):
        a summary, or HealthCheckFailed."""
        base = base_url or svc.health_url.get(env.name)
        if base is None:
            return "no health URL configured for this environment: checks skipped"
        paths = svc.health_paths or env.health.paths
        results = await self.health.check(
            service=svc.name, base_url=base, paths=paths, settings=env.health
        )
        return ", ".join(f"`{r.path}` {r.detail}" for r in results)

    def is_canary(self, env: Environment, target: Target) -> bool:
        return self.config.service(target.service).canary_in(env.name) is not None

    async def require(self, deployment_id: str) -> Deployment:
        run = await self.deployments.get(deployment_id)
        if run is None:
            raise RuntimeError(f"Deployment {deployment_id} vanished from the store.")
        return run

    async def end(
        self,
        run: Deployment,
        from_state: DeploymentState,
        to: DeploymentState,
        *,
        at: datetime | None = None,
        **fields: Any,
    ) -> Deployment | None:
        """Move a run from `from_state` to the final state `to` (once: a compare-and-set);
        the ended run, or None when its state had moved on."""
        now = at or self.clock.now()
        if not await self.deployments.transition(
            run.id, from_states=[from_state], to=to, at=now, finished_at=now, stage=None, **fields
        ):
            return None
        return await self.require(run.id)

    async def event(
        self,
        run: Deployment,
        stage: str,
        status: str,
        *,
        service: str | None = None,
        detail: str | Line | None = None,
    ) -> None:
        """Record a stage event, then tell the card's thread."""
        event = stage_event(run, stage, status, detail, at=self.clock.now(), service=service)
        await self.deployments.record_event(event)
        await quietly(lambda: self.notifier.stage_changed(run, event), "stage_changed", run)

    async def target_failed(
        self, run: Deployment, service: str, exc: ChatOpsError, *, stage: str
    ) -> None:
        """Mark the target of `service` failed and record why, under the stage the error names
        (`stage` when it names none)."""
        await self.deployments.update_target(
            run.id, service, status=TargetStatus.FAILED, detail=exc.user_message
        )
        await self.event(
            run, getattr(exc, "stage", stage), "failed", service=service, detail=exc.user_message
        )

    async def redraw(self, run: Deployment) -> None:
        await quietly(lambda: self.notifier.redraw(run), "redraw", run)

    async def notify_run(self, run: Deployment) -> None:
        await quietly(lambda: self.notifier.run_changed(run), "run_changed", run)


async def quietly(call: Callable[[], Awaitable[None]], what: str, run: Deployment) -> None:
    """A chat failure must never stop a deploy: the store already holds the truth."""
    try:
        async with asyncio.timeout(NOTIFY_TIMEOUT_S):
            await call()
    except Exception:
        log.warning("notifier %s failed", what, exc_info=True, extra={"deployment_id": run.id})
