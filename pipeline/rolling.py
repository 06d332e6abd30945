"""The rolling strategy: each service gets a new revision with the new image, ECS replaces its
tasks, health is checked; going back moves the service to its previous revision.

Every step records its start before acting and re-reads ECS before mutating, so a run
re-attached after a restart continues without doing anything twice.
"""

from __future__ import annotations

from pipeline.kernel.config import Environment
from pipeline.kernel.errors import ChatOpsError
from pipeline.steps import Steps, rev
from store.deploy.models import Deployment, Target, TargetStatus


class RollingStrategy:
    def __init__(self, steps: Steps) -> None:
        self._steps = steps

    async def deploy(self, run: Deployment, env: Environment, target: Target) -> None:
        """Roll `target` out. Raises ChatOpsError (recorded on the target) when it fails."""
        steps = self._steps
        svc = steps.config.service(target.service)
        store = steps.deployments
        try:
            if target.new_task_def is None or target.previous_task_def is None:
                current = await steps.running_version(env, svc)
                target = await steps.register_target(
                    run, env, svc, target, based_on=current.task_definition
                )
            assert target.new_task_def is not None
            await store.update_target(run.id, svc.name, status=TargetStatus.UPDATING)
            await steps.move_to(env, svc.ecs_service, task_definition=target.new_task_def)
            await steps.event(
                run,
                "update",
                "requested",
                service=svc.name,
                detail=f"service now on {rev(target.new_task_def)}",
            )
            await steps.wait_steady(
                env, svc.ecs_service, label=svc.name, task_definition=target.new_task_def
            )
            await store.update_target(run.id, svc.name, status=TargetStatus.STABLE)
            await steps.event(
                run,
                "steady",
                "done",
                service=svc.name,
                detail="ECS runs the new revision on every task",
            )
            summary = await steps.check_health(env, svc)
            await store.update_target(run.id, svc.name, status=TargetStatus.HEALTHY, detail=summary)
            await steps.event(run, "health", "passed", service=svc.name, detail=summary)
        except ChatOpsError as exc:
            await steps.target_failed(run, svc.name, exc, stage="rollout")
            raise

    async def needs_rollback(self, env: Environment, t: Target) -> bool:
        """Whether `t` must go back: it was (maybe) updated, or ECS runs its new revision
        anyway (a rollout stopped while its UpdateService was still in flight)."""
        if t.status is TargetStatus.ROLLED_BACK or t.previous_task_def is None:
            return False
        if t.changed_ecs:
            return True
        if t.new_task_def is None:
            return False
        svc = self._steps.config.service(t.service)
        status = await self._steps.describe(env, svc.ecs_service)
        return status.task_definition == t.new_task_def

    async def roll_back(self, run: Deployment, env: Environment, target: Target) -> str | None:
        """Move `target` back to its previous revision and check it; the failure, or None."""
        steps = self._steps
        svc = steps.config.service(target.service)
        assert target.previous_task_def is not None
        await steps.deployments.update_target(run.id, svc.name, status=TargetStatus.ROLLING_BACK)
        await steps.event(
            run,
            "rollback",
            "started",
            service=svc.name,
            detail=f"back to {rev(target.previous_task_def)}",
        )
        try:
            await steps.move_to(env, svc.ecs_service, task_definition=target.previous_task_def)
            await steps.wait_steady(
                env, svc.ecs_service, label=svc.name, task_definition=target.previous_task_def
            )
            summary = await steps.check_health(env, svc)
        except ChatOpsError as exc:
            await steps.deployments.update_target(
                run.id, svc.name, status=TargetStatus.ROLLBACK_FAILED, detail=exc.user_message
            )
            await steps.event(run, "rollback", "failed", service=svc.name, detail=exc.user_message)
            return exc.user_message
        await steps.deployments.update_target(
            run.id, svc.name, status=TargetStatus.ROLLED_BACK, detail=summary
        )
        await steps.event(run, "rollback", "done", service=svc.name, detail=summary)
        return None
