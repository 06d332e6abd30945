"""The runner: the only owner of long-running work (deploy runs) in the process.

It keeps a strong reference to every task it starts, re-attaches unfinished runs at start-up,
and on shutdown cancels them and waits a bounded grace period.

With a `LeaseKeeper` (always, in the bot), each run executes under its lease: a run whose
lease another replica holds is left to it; `tend` renews the leases and follows what other
replicas changed in the runs held here (a stop, a canary's hold or promote); `adopt` takes
over the runs whose lease lapsed; `enforce` cancels a run the moment its lease runs out here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from datetime import timedelta

from pipeline.deploy import DeployEngine
from pipeline.kernel.errors import ShuttingDown
from pipeline.kernel.ports import Clock
from pipeline.leases import LeaseKeeper
from store.db import StoreError
from store.deploy.models import Deployment, DeploymentState, StageStatus
from store.deploy.repository import Deployments
from store.leases import FENCE, Fence, deployment_of, run_lease

log = logging.getLogger(__name__)


class Runner:
    def __init__(
        self,
        *,
        engine: DeployEngine,
        deployments: Deployments,
        clock: Clock,
        shutdown_grace_s: float = 10.0,
        keeper: LeaseKeeper | None = None,
    ) -> None:
        self._engine = engine
        self._keeper = keeper
        # What each run held here last looked like, to see another replica's change to it.
        self._seen: dict[str, Hashable] = {}
        self._fences: dict[str, Fence] = {}
        self._followers: list[Callable[[Deployment], Awaitable[None]]] = []
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
        self._seen.pop(deployment_id, None)
        self._fences.pop(deployment_id, None)
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
        """Re-attach every approved, running or rolling-back run. Returns their ids.

        A run whose lease another live replica holds is left to it (its task here ends at
        once); this replica's own runs from before a restart are taken back at once."""
        runs = await self._deployments.in_states(s for s in DeploymentState if s.in_flight)
        for run in runs:
            log.info("re-attaching deployment %s (%s)", run.id, run.state.value)
            self.submit(run.id)
        return [r.id for r in runs]

    def on_followed(self, listener: Callable[[Deployment], Awaitable[None]]) -> None:
        """Call `listener` with each run held here that another replica changed (the owner
        redraws its card: the replica that took the click does not)."""
        self._followers.append(listener)

    def owns(self, deployment_id: str) -> bool:
        """Whether this replica executes `deployment_id` now under a lease it still trusts
        (without leases: whether it executes it)."""
        if self._keeper is None:
            return deployment_id in self._tasks
        return self._keeper.holds(run_lease(deployment_id))

    async def adopt(self) -> list[str]:
        """Take over (resume, as at a restart) every unfinished run whose lease lapsed, or
        that never had one for a lease's time (a replica died between the approval and the
        lease). Returns the ids this replica started."""
        if self._keeper is None or self._closing:
            return []
        states = [s.value for s in DeploymentState if s.in_flight]
        now = self._clock.now()
        ids = await self._keeper.leases.adoptable_runs(
            states, now=now, quiet_since=now - timedelta(seconds=self._keeper.ttl_s)
        )
        started = [i for i in ids if i not in self._tasks]
        for deployment_id in started:
            log.info(
                "adopting deployment %s: its lease lapsed",
                deployment_id,
                extra={"deployment_id": deployment_id},
            )
            self.submit(deployment_id)
        return started

    async def tend(self) -> set[str]:
        """Renew this replica's leases, stop the runs whose lease another replica took, and
        follow what other replicas changed in the runs held here. Returns the leases lost.
        Raises StoreError when the database does not answer (the deadlines then run on)."""
        if self._keeper is None:
            return set()
        self.enforce()
        lost = await self._keeper.renew()
        for name in lost:
            if (deployment_id := deployment_of(name)) is not None:
                self._stop_acting(deployment_id, "another replica holds its lease")
        if not self._keeper.present:
            await self._keeper.join()
        held = [d for d in self._tasks if self.owns(d)]
        for run in (await self._deployments.get_many(held)).values() if held else ():
            if self._follow(run):
                for listener in self._followers:
                    await listener(run)
        return lost

    def enforce(self) -> list[str]:
        """Cancel every run whose lease ran out here (its local deadline passed without a
        renewal): it stops before another replica may take it over. Touches no database."""
        if self._keeper is None:
            return []
        stopped = []
        for name in self._keeper.overdue():
            if (deployment_id := deployment_of(name)) is not None:
                stopped.append(deployment_id)
                self._stop_acting(deployment_id, "its lease ran out before it could be renewed")
        # A run cancelled earlier may be stuck in a database call: cancel it again.
        for deployment_id, fence in self._fences.items():
            task = self._tasks.get(deployment_id)
            if task is not None and not fence.valid() and deployment_id not in stopped:
                task.cancel()
        return stopped

    def _stop_acting(self, deployment_id: str, why: str) -> None:
        task = self._tasks.get(deployment_id)
        if task is not None:
            log.warning(
                "stopping deployment %s here: %s",
                deployment_id,
                why,
                extra={"deployment_id": deployment_id},
            )
            task.cancel()

    def _follow(self, run: Deployment) -> bool:
        """Pass on a change another replica made to a run held here: a stop (moved to rolling
        back, or cancelled while waiting) or a canary stage held, resumed or promoted."""
        # What others change: the state (a stop), a stage held or resumed, a promotion; not
        # what the run itself changes (a stage started or ended), which wakes nothing.
        seen = (
            run.state,
            frozenset(
                (s.position, s.status is StageStatus.HELD, s.promoted_by)
                for s in run.stages
                if s.status is StageStatus.HELD or s.promoted_by is not None
            ),
        )
        before = self._seen.get(run.id)
        self._seen[run.id] = seen
        if before == seen:
            return False
        # The first look wakes too: a change made between the adoption and this look would
        # otherwise go unseen (a spare wake costs the run one early check).
        if run.state is DeploymentState.ROLLING_BACK or run.state.finished:
            self.stop(run.id)
        self.wake(run.id)
        return True

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
        fence = None
        if self._keeper is not None:
            try:
                fence = await self._keeper.take(run_lease(deployment_id))
            except StoreError:
                log.warning(
                    "could not take the lease of deployment %s; trying again later",
                    deployment_id,
                    exc_info=True,
                    extra={"deployment_id": deployment_id},
                )
                return
            if fence is None:
                log.info(
                    "deployment %s runs on another replica",
                    deployment_id,
                    extra={"deployment_id": deployment_id},
                )
                return
            FENCE.set(fence)
            self._fences[deployment_id] = fence
        try:
            await self._engine.execute(deployment_id, stop, wake)
        except asyncio.CancelledError:
            raise
        except Exception:
            if fence is not None and not fence.valid():
                log.warning(
                    "deployment %s stopped here: this replica lost its lease",
                    deployment_id,
                    extra={"deployment_id": deployment_id},
                )
                return
            log.exception("deployment crashed", extra={"deployment_id": deployment_id})
            await self._fail_safe(deployment_id)
        finally:
            if fence is not None:
                await self._let_go(deployment_id, fence)

    async def _let_go(self, deployment_id: str, fence: Fence) -> None:
        """After the run's task: a finished run, or one stopped by a shutdown, gives its lease
        up (another replica, or this one restarted, resumes it at once); a lost one is only
        forgotten."""
        assert self._keeper is not None
        if not fence.valid():
            self._keeper.drop(fence.name, fence.generation)
            return
        try:
            async with asyncio.timeout(self._keeper.renew_s):
                run = await self._deployments.get(deployment_id)
                if self._closing or run is None or run.state.finished:
                    await self._keeper.release(fence.name, fence.generation)
                else:
                    self._keeper.drop(fence.name, fence.generation)
        except (StoreError, TimeoutError):
            self._keeper.drop(fence.name, fence.generation)

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
