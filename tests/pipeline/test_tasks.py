"""OwnedTasks: one task per key, failures logged not raised, and nothing left behind on close."""

from __future__ import annotations

import asyncio
import logging

import pytest

from pipeline.tasks import OwnedTasks


async def test_a_second_task_for_a_running_key_is_refused_and_never_runs() -> None:
    tasks = OwnedTasks()
    gate = asyncio.Event()
    ran: list[str] = []

    async def work(name: str) -> None:
        await gate.wait()
        ran.append(name)

    first = tasks.spawn("card:1", work("first"))
    second = tasks.spawn("card:1", work("second"))
    gate.set()
    await tasks.wait_idle()

    assert (first, second) == (True, False)
    assert ran == ["first"]
    assert tasks.spawn("card:1", work("third"))
    await tasks.wait_idle()
    assert ran == ["first", "third"]


async def test_a_failing_task_is_logged_and_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = OwnedTasks()
    done: list[int] = []

    async def boom() -> None:
        raise RuntimeError("broken")

    async def fine() -> None:
        done.append(1)

    tasks.spawn("a", boom())
    tasks.spawn("b", fine())
    await tasks.wait_idle()

    assert done == [1]
    assert any(
        r.levelno == logging.ERROR and "background task a failed" in r.getMessage()
        for r in caplog.records
    )


async def test_close_cancels_what_runs_and_refuses_new_work() -> None:
    tasks = OwnedTasks()
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    tasks.spawn("long", forever())
    await asyncio.sleep(0)

    await tasks.close()

    assert cancelled.is_set()
    assert tasks.active == frozenset()
    assert tasks.spawn("late", forever()) is False
