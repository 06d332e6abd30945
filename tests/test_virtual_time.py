"""The tests' autojumping clock (tests/fakes/clock.py), which the sandbox tests run on: sleepers
wake in order and never early, time passes only while the test waits, and those who follow the
clock hear of each move before the sleepers it reached wake."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from tests.fakes.clock import AutojumpClock

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


async def test_sleepers_wake_in_the_order_of_their_due_times_at_those_times() -> None:
    clock = AutojumpClock(T0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, (clock.now() - T0).total_seconds()))

    async with clock.running(), asyncio.TaskGroup() as group:
        for name, seconds in (("bake", 300.0), ("poll", 0.25), ("reminder", 900.0)):
            group.create_task(sleeper(name, seconds))
        await clock.wait(1000)

    assert woke == [("poll", 0.25), ("bake", 300.0), ("reminder", 900.0)]


async def test_time_stands_still_while_the_test_acts_and_flows_while_it_waits() -> None:
    clock = AutojumpClock(T0, idle_s=0.001)
    async with clock.running():
        bake = asyncio.create_task(clock.sleep(60))
        await asyncio.sleep(0.05)  # real time, the test acting: no jump
        stood = clock.now()
        with clock.flowing():
            await bake

    assert stood == T0
    assert clock.now() == T0 + timedelta(seconds=60)


async def test_followers_hear_of_each_move_before_the_sleepers_wake() -> None:
    clock = AutojumpClock(T0)
    heard: list[datetime] = []
    seen_by_sleeper: list[list[datetime]] = []

    async def follower(when: datetime) -> None:
        heard.append(when)

    stop = clock.follow(follower)

    async def sleeper() -> None:
        await clock.sleep(2)
        seen_by_sleeper.append(list(heard))

    async with clock.running():
        task = asyncio.create_task(sleeper())
        await asyncio.sleep(0)  # asleep until T0 + 2 s
        await clock.advance(1)
        await clock.advance(1)
        await task
        stop()
        await clock.advance(5)

    assert heard == [T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)]
    assert seen_by_sleeper == [heard]


async def test_a_sleep_cut_short_is_not_waited_for() -> None:
    clock = AutojumpClock(T0)
    async with clock.running():
        cut = asyncio.create_task(clock.sleep(3600))
        await asyncio.sleep(0)
        cut.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cut
        await clock.wait(1)

    assert clock.now() == T0 + timedelta(seconds=1)
