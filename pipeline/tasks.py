"""A small owner for background work that is not a deploy run (card redraws and their retries).

Every task it starts is kept by key until it ends, so none is dropped or garbage-collected, at
most one runs per key, and `close` cancels what is left and waits for it. Deploy runs have
their own owner, `pipeline.runner.Runner`. `first_done` races work within one operation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


async def first_done(*work: Awaitable[Any]) -> list[Any]:
    """Run `work` side by side until one ends, then cancel the others and wait for them (also
    when cancelled itself). Each one's result or exception, in order; the losers' is usually a
    CancelledError."""
    tasks = [asyncio.ensure_future(w) for w in work]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    return results


class OwnedTasks:
    """Background tasks by key. `spawn` refuses while closing and while the key's task runs."""

    def __init__(self, *, close_timeout_s: float = 5.0) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closing = False
        self._close_timeout_s = close_timeout_s

    @property
    def active(self) -> frozenset[str]:
        return frozenset(k for k, t in self._tasks.items() if not t.done())

    def spawn(self, key: str, work: Coroutine[Any, Any, None]) -> bool:
        """Run `work` as the task for `key`. Returns False (and closes `work` unrun) when a task
        for `key` is still running or the owner is closing."""
        running = self._tasks.get(key)
        if self._closing or (running is not None and not running.done()):
            work.close()
            return False
        task = asyncio.create_task(self._guarded(key, work), name=key)
        self._tasks[key] = task
        task.add_done_callback(lambda t: self._forget(key, t))
        return True

    def _forget(self, key: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]

    async def _guarded(self, key: str, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task %s failed", key)

    async def wait_idle(self) -> None:
        """Wait until no task runs, including tasks started meanwhile."""
        while self.active:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def close(self) -> None:
        """Refuse new tasks, cancel the running ones and wait for them (bounded)."""
        self._closing = True
        tasks = [t for t in self._tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=self._close_timeout_s)
            if pending:
                log.warning("%d background task(s) did not stop in time", len(pending))
