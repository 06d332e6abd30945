"""The closing of rollback windows: at a deploy's deadline its card loses the Roll back button.

Each open window has a timer (`window_timer`), armed again at start-up; the safety sweep closes
any window whose timer was missed. A closed window is a column of the run, closed once.
"""

from __future__ import annotations

from commands.runs.lifecycle import Runs
from pipeline.deploy import DeployEngine, window_timer
from pipeline.kernel.ports import Clock, Timers
from store.deploy.repository import Deployments


class RollbackWindows:
    """Closes the rollback windows of successful deploys, on their timers or in the sweep."""

    def __init__(
        self,
        *,
        deployments: Deployments,
        runs: Runs,
        engine: DeployEngine,
        timers: Timers,
        clock: Clock,
    ) -> None:
        self._deployments = deployments
        self._runs = runs
        self._engine = engine
        self._timers = timers
        self._clock = clock

    async def close_window(self, deployment_id: str) -> bool:
        """At the deadline: close a deploy's rollback window and redraw its card (button gone)."""
        run = await self._deployments.get(deployment_id)
        now = self._clock.now()
        if run is None or run.rollback_deadline is None or run.window_closed_at is not None:
            return False
        if now < run.rollback_deadline:
            self._timers.arm(window_timer(run.id), run.rollback_deadline)
            return False
        if not await self._deployments.close_window(run.id, at=run.rollback_deadline):
            return False
        # A canary's old colours kept running for the window; now they can go.
        await self._engine.retire_old_colours(run.id)
        await self._runs.redraw(run.id)
        return True

    async def arm_timers(self) -> int:
        """Arm the closing of every open rollback window (at start-up). Returns how many."""
        windows = await self._deployments.open_windows()
        for run in windows:
            if run.rollback_deadline is not None:
                self._timers.arm(window_timer(run.id), run.rollback_deadline)
        return len(windows)

    async def close_due_windows(self) -> int:
        """The safety sweep: close every window whose deadline passed."""
        closed = 0
        for run in await self._deployments.open_windows():
            closed += await self.close_window(run.id)
        return closed
