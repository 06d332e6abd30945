"""Several replicas of the bot in one test: each a `BotDriver` (its own runtime, store
connection and HTTP server) over one shared database, on one virtual clock.

`ReplicaClock` stands in for the replicas' schedulers: while virtual time passes (a run's
sleep, or `pass_time`), every `lease_renew_s` each live replica renews its leases, adopts
lapsed runs and outlives dead replicas (`Runtime.tend`), and each replica that still runs,
even cut off from the database, checks its fences (`Runner.enforce`), as the bot's jobs do.
A replica is `alive`, `partitioned` (its database calls hang; its fence checks go on) or
`dead` (killed: nothing of it runs, its database calls hang).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Protocol

from bot.runtime import Runtime
from pipeline.kernel.ports import Ecs
from tests.driver import BotDriver
from tests.fakes.clock import FakeClock
from tests.fakes.ecs import PassThroughEcs

RENEW_S = 5.0
TTL_S = 20.0
CUT_OFF_BACKSTOP_S = 10.0


class Life(Enum):
    ALIVE = "alive"
    PARTITIONED = "partitioned"
    FROZEN = "frozen"  # the process paused (a stalled host, SIGSTOP): none of its jobs run
    DEAD = "dead"


@dataclass
class Replica:
    name: str
    driver: BotDriver
    life: Life = Life.ALIVE
    _unblock: threading.Event | None = None
    _tending: bool = False

    @property
    def runtime(self) -> Runtime:
        return self.driver.runtime

    def cut_off(self, life: Life) -> None:
        """The database stops answering this replica: its store thread hangs (every call
        waits behind it), as on a network partition or a dead host."""
        self.life = life
        self._unblock = threading.Event()
        blocked = threading.Event()

        def hang(unblock: threading.Event) -> None:
            blocked.set()
            unblock.wait()

        self.driver.runtime.store._executor.submit(hang, self._unblock)
        # The cut is when the store thread hangs: a write already queued (one that extends the
        # lease) runs first, and on a busy machine it could otherwise run after the test moved
        # the virtual clock on, as if the replica had lived longer.
        assert blocked.wait(CUT_OFF_BACKSTOP_S), "the store thread did not stop"

    def reconnect(self) -> None:
        if self._unblock is not None:
            self._unblock.set()
            self._unblock = None


@dataclass
class Moment:
    at_s: float
    replica: str
    what: str
    runs: list[str]


class ReplicaClock(FakeClock):
    """Virtual time with a monotonic clock of its own, driving the replicas' lease jobs."""

    def __init__(self) -> None:
        super().__init__()
        self.replicas: list[Replica] = []
        self.log: list[Moment] = []
        self.observe: Callable[[], None] = lambda: None
        self.start = self.now()

    def monotonic(self) -> float:
        return (self.now() - self.start).total_seconds() + 1000.0

    def elapsed(self) -> float:
        return (self.now() - self.start).total_seconds()

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await self.pass_time(seconds)

    async def pass_time(self, seconds: float) -> None:
        left = seconds
        while left > 0:
            step = min(left, RENEW_S)
            self._now += timedelta(seconds=step)
            left -= step
            await self.tick()
        await asyncio.sleep(0)

    async def tick(self) -> None:
        """What each replica's scheduler does at this moment."""
        self.observe()
        for replica in list(self.replicas):
            if replica.life in (Life.ALIVE, Life.PARTITIONED):
                stopped = replica.runtime.runner.enforce()
                if stopped:
                    self.log.append(Moment(self.elapsed(), replica.name, "stopped", stopped))
            if replica.life is Life.ALIVE and not replica._tending:
                replica._tending = True
                try:
                    before = set(replica.runtime.runner.active)
                    await replica.runtime.tend()
                    adopted = sorted(set(replica.runtime.runner.active) - before)
                    if adopted:
                        self.log.append(Moment(self.elapsed(), replica.name, "adopted", adopted))
                finally:
                    replica._tending = False

    def first(self, what: str) -> Moment:
        return next(m for m in self.log if m.what == what)


class SkewedClock:
    """One replica's view of the shared virtual time, its wall clock off by `skew_s`."""

    def __init__(self, base: ReplicaClock, skew_s: float) -> None:
        self.base = base
        self.skew = timedelta(seconds=skew_s)

    def now(self) -> datetime:
        return self.base.now() + self.skew

    def monotonic(self) -> float:
        return self.base.monotonic()

    async def sleep(self, seconds: float) -> None:
        await self.base.sleep(seconds)


class CountingEcs(PassThroughEcs):
    """Records every RegisterTaskDefinition and UpdateService, whichever replica sends it."""

    def __init__(self, inner: Ecs, calls: list[tuple[str, str]]) -> None:
        super().__init__(inner)
        self.calls = calls

    async def register_with_image(
        self, *, region: str, task_definition: str, container: str, image: str, deployment_id: str
    ) -> str:
        self.calls.append(("RegisterTaskDefinition", container))
        return await super().register_with_image(
            region=region,
            task_definition=task_definition,
            container=container,
            image=image,
            deployment_id=deployment_id,
        )

    async def update_service(
        self,
        *,
        region: str,
        cluster: str,
        service: str,
        task_definition: str | None = None,
        desired: int | None = None,
    ) -> None:
        self.calls.append(("UpdateService", service))
        await super().update_service(
            region=region,
            cluster=cluster,
            service=service,
            task_definition=task_definition,
            desired=desired,
        )


class MakeReplica(Protocol):
    def __call__(
        self, name: str, ecs: Ecs, *, clock: ReplicaClock | SkewedClock | None = None
    ) -> Awaitable[Replica]: ...


async def settle(*replicas: Replica) -> None:
    """Wait until every live replica's runs and listener work are done."""
    for _ in range(3):
        for replica in replicas:
            if replica.life is Life.ALIVE:
                await replica.driver.settle()
