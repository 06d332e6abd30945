"""The way back of a run that failed: a deploy moves to ROLLING_BACK and every service it
changed is taken back (a rolling service to its previous revision, a canary's traffic to its
old colour), ending ROLLED_BACK or ROLLBACK_FAILED. A rollback run that failed is not rolled
forward again: it ends ROLLBACK_FAILED.

Like the rollout, it re-reads ECS before it sends anything, so a run re-attached after a restart
takes back only what still needs it.
"""

from __future__ import annotations

import asyncio

from pipeline.canary.rollout import CanaryStrategy
from pipeline.kernel.config import Environment
from pipeline.kernel.text import Line
from pipeline.rolling import RollingStrategy
from pipeline.steps import Steps, error_fields
from store.deploy.models import Deployment, DeploymentState, Target, TargetStatus


class Rollback:
    """Takes back what a failed run changed. The engine decides when; see `DeployEngine`."""

    def __init__(self, steps: Steps, *, rolling: RollingStrategy, canary: CanaryStrategy) -> None:
        self._steps = steps
        self._rolling = rolling
        self._canary = canary

    async def start(self, run: Deployment, reason: str | Line) -> None:
        """RUNNING -> ROLLING_BACK (once), with the failure as the run's error."""
        steps = self._steps
        if await steps.deployments.transition(
            run.id,
            from_states=[DeploymentState.RUNNING],
            to=DeploymentState.ROLLING_BACK,
            at=steps.clock.now(),
            stage="rollback",
            **error_fields(reason),
        ):
            failed = await steps.require(run.id)
            await steps.event(failed, "rollout", "failed", detail=reason)
            await steps.notify_run(failed)

    async def roll_back(self, run: Deployment) -> None:
        """Take back every service the run changed, then end it ROLLED_BACK, or
        ROLLBACK_FAILED when a service could not go back."""
        steps = self._steps
        env = steps.config.environment(run.environment)
        changed = [t for t in run.active_targets if await self._needs_rollback(env, t)]
        limit = asyncio.Semaphore(env.rollout.max_parallel)

        async def one(target: Target) -> None:
            async with limit:
                if target.canary_colour is not None and steps.is_canary(env, target):
                    await self._canary.flip_back(run, env, target)
                else:
                    await self._rolling.roll_back(run, env, target)

        async with asyncio.TaskGroup() as tg:
            for target in changed:
                tg.create_task(one(target))
        run = await steps.require(run.id)
        failed = [t for t in run.active_targets if t.status is TargetStatus.ROLLBACK_FAILED]
        final = DeploymentState.ROLLBACK_FAILED if failed else DeploymentState.ROLLED_BACK
        done = await steps.end(run, DeploymentState.ROLLING_BACK, final)
        if done is not None:
            went_back = (TargetStatus.ROLLED_BACK, TargetStatus.ROLLBACK_FAILED)
            if not any(t.status in went_back for t in done.active_targets):
                # It stopped before any service moved (a pre-flight check, say).
                await steps.event(done, "rollback", "skipped", detail="no service had changed")
            else:
                await steps.event(
                    done,
                    "rollback",
                    "failed" if failed else "done",
                    detail=", ".join(t.service for t in failed) or None,
                )
            await steps.notify_run(done)

    async def fail_rollback_run(self, run: Deployment, reason: str | Line) -> None:
        """A rollback that failed is not rolled forward again: it ends loudly, with the
        commands still to run by hand."""
        steps = self._steps
        latest = await steps.require(run.id)
        for t in latest.active_targets:
            if t.status is TargetStatus.FAILED:
                await steps.deployments.update_target(
                    run.id, t.service, status=TargetStatus.ROLLBACK_FAILED
                )
        done = await steps.end(
            run, DeploymentState.RUNNING, DeploymentState.ROLLBACK_FAILED, **error_fields(reason)
        )
        if done is not None:
            await steps.event(done, "rollback", "failed", detail=reason)
            await steps.notify_run(done)

    async def _needs_rollback(self, env: Environment, t: Target) -> bool:
        if t.canary_colour is not None and self._steps.is_canary(env, t):
            return t.status is not TargetStatus.ROLLED_BACK
        return await self._rolling.needs_rollback(env, t)
