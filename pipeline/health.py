"""HTTP health checks against a service's endpoints, with retries on the injected clock."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp

from pipeline.kernel.config import HealthSettings
from pipeline.kernel.errors import HealthCheckFailed
from pipeline.kernel.ports import Clock


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: its status, its body and how long it took (status 0: none came)."""

    status: int
    body: bytes
    latency_s: float


@dataclass(frozen=True)
class EndpointResult:
    path: str
    healthy: bool
    attempts: int
    detail: str


class HealthChecker:
    """GETs each path until it answers the expected status, `retries` times at most per path.

    Touches no AWS. Each request has its own deadline (`timeout_s`); waits between attempts go
    through the clock, so tests take no real time.
    """

    def __init__(self, session: aiohttp.ClientSession, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    async def check(
        self, *, service: str, base_url: str, paths: tuple[str, ...], settings: HealthSettings
    ) -> list[EndpointResult]:
        """One result per path. Raises HealthCheckFailed at the first path that never passes."""
        results = []
        for path in paths:
            result = await self._check_path(base_url.rstrip("/") + path, path, settings)
            results.append(result)
            if not result.healthy:
                raise HealthCheckFailed(service, path, result.detail, result.attempts)
        return results

    async def request(self, method: str, url: str, *, timeout_s: float) -> Answer:
        """One request, timed on the event loop's monotonic clock (a smoke test)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(timeout_s):
                async with self._session.request(method, url, allow_redirects=False) as resp:
                    body = await resp.read()
                    return Answer(resp.status, body, loop.time() - started)
        except (TimeoutError, aiohttp.ClientError):
            return Answer(0, b"", loop.time() - started)

    async def probe(
        self, *, base_url: str, paths: tuple[str, ...], settings: HealthSettings
    ) -> list[EndpointResult]:
        """One attempt per path, no retries (a canary's check at each cadence tick)."""
        results = []
        for path in paths:
            detail = await self._probe(base_url.rstrip("/") + path, settings)
            healthy = detail == str(settings.expect_status)
            results.append(EndpointResult(path, healthy, 1, detail))
        return results

    async def _check_path(self, url: str, path: str, settings: HealthSettings) -> EndpointResult:
        detail = "not tried"
        for attempt in range(1, settings.retries + 1):
            detail = await self._probe(url, settings)
            if detail == str(settings.expect_status):
                return EndpointResult(path, True, attempt, detail)
            if attempt < settings.retries:
                await self._clock.sleep(settings.interval_s)
        return EndpointResult(path, False, settings.retries, f"last answer: {detail}")

    async def _probe(self, url: str, settings: HealthSettings) -> str:
        try:
            async with asyncio.timeout(settings.timeout_s):
                async with self._session.get(url, allow_redirects=False) as resp:
                    await resp.read()
                    return str(resp.status)
        except TimeoutError:
            return f"no answer within {settings.timeout_s:g}s"
        except aiohttp.ClientError as exc:
            return f"connection failed: {type(exc).__name__}"
