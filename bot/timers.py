"""The `Timers` port: each stored due time (approval expiry, incident reminder) is a timer.

Timers are kept by key. With a scheduler attached (the running bot), each one is also an
APScheduler date job, so it fires within a moment of its due time. `run_due` fires whatever is
due by the injected clock: the tests drive it, and so does the bot's slow safety sweep.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from pipeline.kernel.ports import Clock
from pipeline.leases import Firings

log = logging.getLogger(__name__)

Fire = Callable[[str], Awaitable[None]]


class Timers:
    """Armed timers by key. `fire(key)` is called once per due time, never concurrently per key."""

    def __init__(self, clock: Clock, *, firings: Firings | None = None) -> None:
        """With `firings` (replicas), each firing is claimed across replicas first: a timer
        armed on several replicas (each re-arms them from the database) fires on one."""
        self._clock = clock
        self._firings = firings
        self._due: dict[str, datetime] = {}
        self._fire: Fire | None = None
        self._scheduler: AsyncIOScheduler | None = None

    @property
    def armed(self) -> dict[str, datetime]:
        return dict(self._due)

    def on_fire(self, fire: Fire) -> None:
        self._fire = fire

    def attach(self, scheduler: AsyncIOScheduler) -> None:
        """Fire in real time from now on: every armed timer becomes a job."""
        self._scheduler = scheduler
        for key, at in self._due.items():
            self._schedule(key, at)

    def arm(self, key: str, at: datetime) -> None:
        self._due[key] = at
        if self._scheduler is not None:
            self._schedule(key, at)

    def disarm(self, key: str) -> None:
        self._due.pop(key, None)
        if self._scheduler is not None:
            with contextlib.suppress(JobLookupError):
                self._scheduler.remove_job(key)

    def _schedule(self, key: str, at: datetime) -> None:
        assert self._scheduler is not None
        self._scheduler.add_job(
            self._on_job,
            "date",
            run_date=at,
            args=[key, at],
            id=key,
            replace_existing=True,
            misfire_grace_time=None,
        )

    async def _on_job(self, key: str, at: datetime) -> None:
        if self._due.get(key) == at:
            await self._run(key, at)

    async def run_due(self) -> list[str]:
        """Fire every timer due by the clock; returns their keys."""
        now = self._clock.now()
        due = sorted((at, k) for k, at in self._due.items() if at <= now)
        fired = []
        for at, key in due:
            if self._due.get(key) == at:  # not fired (or moved) by a job meanwhile
                await self._run(key, at)
                fired.append(key)
        return fired

    async def _run(self, key: str, at: datetime) -> None:
        self._due.pop(key, None)
        if self._fire is None:
            raise RuntimeError("Timers fired before on_fire() was given a handler.")
        firings = self._firings
        try:
            if firings is not None and not await firings.claim(key, at):
                return  # another replica fires it
            await self._fire(key)
        except Exception:
            log.exception("timer %s failed", key)
            if firings is not None:
                await _quietly(firings.release(key, at), key)
            return
        if firings is not None:
            await _quietly(firings.done(key, at), key)


async def _quietly(call: Awaitable[None], key: str) -> None:
    try:
        await call
    except Exception:
        log.warning("could not record the firing of timer %s", key, exc_info=True)
