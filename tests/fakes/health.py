"""A service health endpoint on 127.0.0.1 whose answers the test controls.

URLs look like `{base}/{service}{path}`; `status_for(service, path)` decides the status.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class FakeHealth:
    """`status_for` answers each request; while `pause_when(service, path)` is true a request
    gets no answer (`paused` is set when one waits) until `resume()` or `close()`."""

    status_for: Callable[[str, str], int] = lambda service, path: 200
    version_for: Callable[[str], str | None] = lambda service: None
    before_answer: Callable[[str, str], Awaitable[None]] | None = None
    """Awaited before each answer: a test can hold a request (and whoever waits on it)."""
    hits: list[tuple[str, str, int]] = field(default_factory=list)
    pause_when: Callable[[str, str], bool] | None = None
    paused: asyncio.Event = field(default_factory=asyncio.Event)
    _resumed: asyncio.Event = field(default_factory=asyncio.Event)
    _server: TestServer | None = None

    def resume(self) -> None:
        self.pause_when = None
        self._resumed.set()

    @property
    def base(self) -> str:
        assert self._server is not None
        return str(self._server.make_url("")).rstrip("/")

    def url(self, service: str) -> str:
        return f"{self.base}/{service}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{service}/{path:.*}", self._handle)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()

    async def close(self) -> None:
        self._resumed.set()
        if self._server is not None:
            await self._server.close()

    async def _handle(self, request: web.Request) -> web.Response:
        service = request.match_info["service"]
        path = "/" + request.match_info["path"]
        if self.before_answer is not None:
            await self.before_answer(service, path)
        if self.pause_when is not None and self.pause_when(service, path):
            self.paused.set()
            await self._resumed.wait()
        status = self.status_for(service, path)
        self.hits.append((service, path, status))
        body: dict[str, str] = {"status": "healthy" if status == 200 else "unhealthy"}
        version = self.version_for(service)
        if version is not None:
            body["version"] = version
        return web.json_response(body, status=status)
