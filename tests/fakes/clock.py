"""Virtual time. FakeClock: `sleep` advances at once and records what was asked.
AutojumpClock: sleepers wake in order, and time jumps to the next one when the system waits."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self._now += timedelta(seconds=seconds)
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


Follower = Callable[[datetime], Awaitable[None]]


class AutojumpClock:
    """Virtual time for a whole running system (the sandbox: its bot, its demo traffic).

    Sleepers wake in the order of their due times, never before. Time stands still while the
    system works, and while the test acts (a click lands in the stage it was aimed at); while
    the test waits (`flowing()`, or a `sleep` of its own), once no one has started a sleep for
    `idle_s` of real time, it jumps to the earliest due time, as trio's `MockClock` autojumps
    (and a test may `advance` it itself). A bake of minutes passes in milliseconds, and a stage
    held for ever does not pass at all.
    Those who `follow` the clock (the demo services' CloudWatch traffic, the bot's stored
    timers) are told each time it moves, in order, before any sleeper it reached wakes.

    A jump while some real work is under way (a moto call in a thread) only makes that work
    take longer in virtual time, as a slow network would: nothing is due before its time.
    """

    def __init__(self, start: datetime | None = None, *, idle_s: float = 0.01) -> None:
        self._now = start or datetime.now(UTC)
        self._idle_s = idle_s
        self._due: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._slept = 0  # sleeps started so far: a change means the system is not idle
        self._followers: list[Follower] = []
        self._moving = asyncio.Lock()
        self._poked = asyncio.Event()
        self._waiting = 0  # the test's waits under way: time flows while there is one
        self.jumps = 0

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        due = self._now + timedelta(seconds=seconds)
        heapq.heappush(self._due, (due, next(self._order), woken))
        self._slept += 1
        self._poked.set()
        await woken  # cancelled (a bake cut short by a click): its entry is skipped later

    async def wait(self, seconds: float) -> None:
        """The test waits `seconds` of virtual time, which flows meanwhile."""
        with self.flowing():
            await self.sleep(seconds)

    @contextlib.contextmanager
    def flowing(self) -> Iterator[None]:
        """Let time flow (jump) while the test waits for something."""
        self._waiting += 1
        self._poked.set()
        try:
            yield
        finally:
            self._waiting -= 1

    def follow(self, follower: Follower) -> Callable[[], None]:
        """Tell `follower` the new time each time the clock moves; returns how to stop."""
        self._followers.append(follower)
        return lambda: self._followers.remove(follower)

    async def advance(self, seconds: float) -> None:
        """Move the clock on by `seconds`, waking in order everyone due on the way."""
        await self.advance_to(self._now + timedelta(seconds=seconds))

    async def advance_to(self, when: datetime) -> None:
        while (due := self._next_due()) is not None and due <= when:
            await self._move(due)
        if when > self._now:
            await self._move(when)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[AutojumpClock]:
        """Jump while the context runs."""
        jumper = asyncio.create_task(self._jump())
        try:
            yield self
        finally:
            jumper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await jumper

    async def _jump(self) -> None:
        while True:
            if not self._waiting or self._next_due() is None:
                self._poked.clear()
                await self._poked.wait()
                continue
            slept = self._slept
            await asyncio.sleep(self._idle_s)
            due = self._next_due()
            if self._waiting and self._slept == slept and due is not None:
                self.jumps += 1
                await self._move(due)

    def _next_due(self) -> datetime | None:
        while self._due and self._due[0][2].done():  # cancelled sleeps
            heapq.heappop(self._due)
        return self._due[0][0] if self._due else None

    async def _move(self, when: datetime) -> None:
        async with self._moving:
            if when <= self._now:
                return
            self._now = when
            try:
                for follower in list(self._followers):
                    await follower(when)
            finally:
                while self._due and self._due[0][0] <= self._now:
                    _, _, woken = heapq.heappop(self._due)
                    if not woken.done():
                        woken.set_result(None)
