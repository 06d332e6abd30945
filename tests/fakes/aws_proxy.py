"""An HTTP proxy in front of a moto server that injects AWS faults the way AWS shows them.

It tells the action of a call the way each protocol names it: ECS speaks JSON, the action in
the `X-Amz-Target` header (`AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition`);
CloudWatch too (`GraniteServiceVersion20100801.GetMetricData`); ELBv2 speaks the query
protocol (`Action=DescribeListeners` in the form body). The proxy forwards every
call to moto unchanged, except that a test can make the next calls of an action answer an AWS
error in that protocol's shape (`fail_next`), or stop (`hold`): before they reach moto, or after
moto has taken them and before the answer goes back ("AWS did it, the bot never heard").
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import aiohttp
from aiohttp import web

_HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


@dataclass
class Hold:
    """One held action: `reached` is set when a call arrives; the call waits for `release`;
    `landed` is set once moto has taken it.

    With `once` = (action, n), only a call made after `action` was seen n times is held.
    """

    action: str
    after_effect: bool
    once: tuple[str, int] | None = None
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    landed: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        self.released.set()


@dataclass(frozen=True)
class _Failure:
    code: str
    status: int
    message: str


class EcsProxy:
    """Listens on 127.0.0.1; `url` is what `AWS_ENDPOINT_URL` of the bot should be."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.calls: list[str] = []
        self._failures: dict[str, list[_Failure]] = {}
        self._holds: dict[str, Hold] = {}
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._closing = asyncio.Event()
        self.url = ""

    def fail_next(
        self, action: str, code: str, *, status: int = 400, message: str = "", times: int = 1
    ) -> None:
        """The next `times` calls of `action` answer AWS error `code`; moto never sees them."""
        failure = _Failure(code, status, message or f"injected {code}")
        self._failures.setdefault(action, []).extend([failure] * times)

    def hold(
        self, action: str, *, after_effect: bool = False, once: tuple[str, int] | None = None
    ) -> Hold:
        """Stop the next call of `action` (made after `once`, when given), before moto sees it
        or (`after_effect`) after moto has taken it."""
        held = Hold(action, after_effect, once)
        self._holds[action] = held
        return held

    def count(self, action: str) -> int:
        return self.calls.count(action)

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def close(self) -> None:
        self._closing.set()
        for held in self._holds.values():
            held.release()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        action = _action(request, body)
        self.calls.append(action)
        queued = self._failures.get(action)
        if queued:
            return _error(request, queued.pop(0))
        held = self._holds.get(action)
        if held is not None and held.once is not None:
            seen, times = held.once
            if self.calls[:-1].count(seen) < times:
                held = None
        if held is not None:
            del self._holds[action]
        if held is not None and not held.after_effect:
            await self._wait(held)
            if self._closing.is_set():
                # The test ended while this call was held: it never reaches moto.
                return web.Response(status=503, text="proxy closing")
        answer = await self._upstream(request, body)
        if held is not None:
            held.landed.set()
        if held is not None and held.after_effect:
            await self._wait(held)
        return answer

    async def _wait(self, held: Hold) -> None:
        held.reached.set()
        await held.released.wait()

    async def _upstream(self, request: web.Request, body: bytes) -> web.Response:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        async with self._session.request(
            request.method, self.upstream + request.path_qs, data=body, headers=headers
        ) as resp:
            payload = await resp.read()
            return web.Response(
                status=resp.status,
                body=payload,
                headers={k: v for k, v in resp.headers.items() if k.lower() not in _HOP_HEADERS},
            )


def _action(request: web.Request, body: bytes) -> str:
    """The AWS action a call asks for, in whichever protocol it speaks."""
    target = request.headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    form = parse_qs(body.decode("utf-8", "replace"))
    return form.get("Action", [""])[0]


def _error(request: web.Request, failure: _Failure) -> web.Response:
    """An AWS error as the protocol of `request` carries it."""
    headers = {"x-amzn-RequestId": "injected-by-test"}
    if request.headers.get("X-Amz-Target"):
        return web.Response(
            status=failure.status,
            body=json.dumps({"__type": failure.code, "message": failure.message}).encode(),
            content_type="application/x-amz-json-1.1",
            headers=headers,
        )
    xml = (
        "<ErrorResponse><Error><Type>Sender</Type>"
        f"<Code>{failure.code}</Code><Message>{failure.message}</Message>"
        "</Error><RequestId>injected-by-test</RequestId></ErrorResponse>"
    )
    return web.Response(
        status=failure.status, body=xml.encode(), content_type="text/xml", headers=headers
    )
