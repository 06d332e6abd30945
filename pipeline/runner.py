"""The runner: the only owner of long-running work (deploy runs) in the process.

It keeps a strong reference to every task it starts, re-attaches unfinished runs at start-up,
and on shutdown cancels them and waits a bounded grace period.
"""

from __future__ import annotations

import asyncio
import logging

from pipeline.deploy import DeployEngine
from pipeline.kernel.errors import ShuttingDown
from pipeline.kernel.ports import Clock
from store.deploy.models import DeploymentState
from store.deploy.repository import Deployments

log = logging.getLogger(__name__)


class Runner:
    def __init__(
        self,
        *,
        engine: DeployEngine,
        deployments: Deployments,
        clock: Clock,
        shutdown_grace_s: float = 10.0,
    ) -> None:
        self._engine = engine
        self._deployments = deployments
        self._clock = clock
        self._grace_s = shutdown_grace_s
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stops: dict[str, asyncio.Event] = {}
        self._wakes: dict[str, asyncio.Event] = {}
        self._closing = False

    @property
    def active(self) -> frozenset[str]:
        return frozenset(self._tasks)

    def submit(self, deployment_id: str) -> None:
        """Start (or keep) the run for `deployment_id`. Raises ShuttingDown while closing.

        Submitting a run that is already executing does nothing, so retries and double clicks
        are harmless.
        """
        if self._closing:
            raise ShuttingDown
        if deployment_id in self._tasks:
            return
        stop = self._stops.setdefault(deployment_id, asyncio.Event())
        wake = self._wakes.setdefault(deployment_id, asyncio.Event())
        task = asyncio.create_task(
            self._guarded(deployment_id, stop, wake), name=f"deploy-{deployment_id}"
        )
        self._tasks[deployment_id] = task
        task.add_done_callback(lambda _t: self._finished(deployment_id))

    def _finished(self, deployment_id: str) -> None:
        self._tasks.pop(deployment_id, None)
        self._stops.pop(deployment_id, None)
        self._wakes.pop(deployment_id, None)

    def wake(self, deployment_id: str) -> None:
        """Tell a canary run that one of its stages was held, resumed or promoted."""
        wake = self._wakes.get(deployment_id)
        if wake is not None:
            wake.set()

    def stop(self, deployment_id: str) -> None:
        """Tell a rolling-out run that it was moved to ROLLING_BACK: it stops rolling out and
        rolls back. Call after the store transition; a run not executing here picks the new
        state up when it is (re-)attached."""
        stop = self._stops.get(deployment_id)
        if stop is not None:
            stop.set()

    async def resume_all(self) -> list[str]:
        """Re-attach every approved, running or rolling-back run. Returns their ids."""
        runs = await self._deployments.in_states(s for s in DeploymentState if s.in_flight)
        for run in runs:
            log.info("re-attaching deployment %s (%s)", run.id, run.state.value)
            self.submit(run.id)
        return [r.id for r in runs]

    async def wait_idle(self) -> None:
        """Wait until no run is executing (tests and graceful drains)."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def close(self) -> None:
        """Refuse new runs, cancel the running ones, wait up to the grace period."""
        self._closing = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=self._grace_s)
            if pending:
                log.warning("%d run(s) did not stop within %.0fs", len(pending), self._grace_s)

    async def _guarded(self, deployment_id: str, stop: asyncio.Event, wake: asyncio.Event) -> None:
        try:
            await self._engine.execute(deployment_id, stop, wake)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("deployment crashed", extra={"deployment_id": deployment_id})
            await self._fail_safe(deployment_id)

    async def _fail_safe(self, deployment_id: str) -> None:
        """After a crash: a rollout turns into a rollback; a crashed rollback (or rollback run,
        which has nothing to go back to) is marked failed."""
        now = self._clock.now()
        run = await self._deployments.get(deployment_id)
        if run is not None and run.is_rollback:
            await self._deployments.transition(
                deployment_id,
                from_states=[DeploymentState.APPROVED, DeploymentState.RUNNING],
                to=DeploymentState.ROLLBACK_FAILED,
                at=now,
                finished_at=now,
                error="An internal error stopped the rollback; check the services by hand.",
            )
            return
        if await self._deployments.transition(
            deployment_id,
            from_states=[DeploymentState.APPROVED, DeploymentState.RUNNING],
            to=DeploymentState.ROLLING_BACK,
            at=now,
            stage="rollback",
            error="An internal error stopped the rollout.",
        ):
            try:
                await self._engine.execute(deployment_id)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("rollback crashed", extra={"deployment_id": deployment_id})
        await self._deployments.transition(
            deployment_id,
            from_states=[DeploymentState.ROLLING_BACK],
            to=DeploymentState.ROLLBACK_FAILED,
            at=self._clock.now(),
            finished_at=self._clock.now(),
            error="An internal error stopped the rollback; check the services by hand.",
        )
