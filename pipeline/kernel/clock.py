"""The real clock: wall time in UTC and asyncio sleeps; tests inject a virtual one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def monotonic(self) -> float:
        """Seconds that only go forward (no NTP step), for deadlines this process keeps."""
        return time.monotonic()


@runtime_checkable
class Monotonic(Protocol):
    def monotonic(self) -> float: ...


def monotonic_of(clock: object) -> Callable[[], float]:
    """The clock's own monotonic seconds (a test clock's follow its virtual time), else the
    process's."""
    return clock.monotonic if isinstance(clock, Monotonic) else time.monotonic
