"""`LocalSlack`: one local Slack on 127.0.0.1 for the test suite and the browser sandbox.

It serves the Web API at `/api/{method}` (form, JSON or query arguments, as slack_sdk sends
them), `response_url` posts at `/respond/{name}`, and a Socket Mode WebSocket at `/socket`.
It records every call, keeps a `Workspace`, and injects the faults of `Faults`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

from aiohttp import WSMsgType, web

from sandbox.slack.errors import SlackError
from sandbox.slack.faults import Faults
from sandbox.slack.feed import Change
from sandbox.slack.models import Json, User
from sandbox.slack.scopes import METHOD_SCOPES
from sandbox.slack.webapi import LongText, ResponseTarget, WebApi
from sandbox.slack.workspace import SEED_USERS, ChannelNames, Workspace

SHUTDOWN_TIMEOUT_S: Final = 5.0
_JSON_ARGS: Final = ("blocks", "view", "attachments", "metadata")


@dataclass
class Call:
    """One Web API call as received: JSON arguments decoded; `error` is what Slack answered."""

    method: str
    args: dict[str, Any]
    status: int = 200
    error: str | None = None


class LocalSlack:
    """A Slack workspace and its Web API on a random port of 127.0.0.1.

    `scopes=None` grants every scope; otherwise a call whose scope is missing answers
    `missing_scope`. `home_tab_enabled` is the app's App Home setting (views.publish answers
    `not_enabled` without it). Use `async with LocalSlack() as slack:` or `start()` and `close()`.
    """

    def __init__(
        self,
        *,
        groups: dict[str, list[str]] | None = None,
        users: Iterable[User] = SEED_USERS,
        scopes: Iterable[str] | None = None,
        missing_channels: Iterable[str] = (),
        unknown_users: Iterable[str] = (),
        home_tab_enabled: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.workspace = Workspace(users=users, groups=groups)
        self.workspace.home_tab_enabled = home_tab_enabled
        self.workspace.missing_channels.update(missing_channels)
        self.workspace.unknown_users.update(unknown_users)
        self.api = WebApi(self.workspace, scopes=scopes, base_url=lambda: self.base)
        self.faults = Faults()
        self.calls: list[Call] = []
        self.responses: list[dict[str, Any]] = []
        self.socket_messages: list[dict[str, Any]] = []
        self.socket_connected = asyncio.Event()
        self._channel_names = ChannelNames(self.workspace)
        self._targets: dict[str, ResponseTarget] = {}
        self._sockets: list[web.WebSocketResponse] = []
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self._base: str | None = None
        self._closing = asyncio.Event()

    # State, as the old fake exposed it

    @property
    def groups(self) -> dict[str, list[str]]:
        return self.workspace.groups

    @property
    def channels(self) -> ChannelNames:
        """Channel id to name; setting an id creates that channel (see `ChannelNames`)."""
        return self._channel_names

    @property
    def missing_channels(self) -> set[str]:
        return self.workspace.missing_channels

    @property
    def unknown_users(self) -> set[str]:
        return self.workspace.unknown_users

    @property
    def scopes(self) -> frozenset[str] | None:
        """The bot's granted scopes (None: all); assign to change them while running."""
        return self.api.scopes

    @scopes.setter
    def scopes(self, granted: Iterable[str] | None) -> None:
        self.api.scopes = None if granted is None else frozenset(granted)

    @property
    def long_texts(self) -> list[LongText]:
        return self.api.long_texts

    @property
    def errors(self) -> dict[str, list[str]]:
        return self.faults.errors

    def of(self, method: str) -> list[dict[str, Any]]:
        """The arguments of every call to `method`, in order (refused calls included)."""
        return [c.args for c in self.calls if c.method == method]

    def subscribe(self) -> asyncio.Queue[Change]:
        return self.workspace.feed.subscribe()

    def unsubscribe(self, queue: asyncio.Queue[Change]) -> None:
        self.workspace.feed.unsubscribe(queue)

    # Faults

    def fail_next(self, method: str, error: str) -> None:
        """The next call to `method` answers ok=false with `error`."""
        self.faults.fail_next(method, error)

    def http_error_next(
        self, method: str, status: int = 500, *, times: int = 1, ts: str | None = None
    ) -> None:
        self.faults.http_error_next(method, status, times=times, ts=ts)

    def rate_limit_next(self, method: str, retry_after: int = 1, *, times: int = 1) -> None:
        self.faults.rate_limit_next(method, retry_after, times=times)

    def delay(self, method: str, seconds: float) -> None:
        self.faults.delay(method, seconds)

    def answer_late(self, method: str, seconds: float, *, times: int = 1) -> None:
        self.faults.answer_late(method, seconds, times=times)

    def accept_then_fail(
        self, method: str, *, status: int = 500, hang: bool = False, times: int = 1
    ) -> None:
        self.faults.accept_then_fail(method, status=status, hang=hang, times=times)

    # Addresses and lifecycle

    @property
    def base(self) -> str:
        if self._base is None:
            raise RuntimeError("LocalSlack has no address until start() has run.")
        return self._base

    @property
    def api_url(self) -> str:
        return self.base + "/api/"

    def response_url(
        self,
        name: str = "r",
        *,
        channel: str | None = None,
        user: str | None = None,
        message_ts: str | None = None,
    ) -> str:
        """A `response_url`; posts to it land in `channel`, for `user`, on `message_ts`."""
        if channel is not None or user is not None or message_ts is not None:
            self._targets[name] = ResponseTarget(channel, user, message_ts)
        return f"{self.base}/respond/{name}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/respond/{name}", self._respond)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._base = f"http://{host}:{port}"

    async def close(self) -> None:
        self._closing.set()
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LocalSlack:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # HTTP

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        try:
            args = await _read_args(request)
        except ValueError:
            self.calls.append(Call(method, {}, error="invalid_json"))
            return web.json_response({"ok": False, "error": "invalid_json"})
        call = Call(method, args)
        self.calls.append(call)
        faulted = await self._before(method, call)
        if faulted is not None:
            return faulted
        # Real Slack names the token's scopes on every answer; `chatops-bot doctor` reads them.
        scopes = {"x-oauth-scopes": ",".join(sorted(self._granted()))}
        try:
            if not _token(request, args):
                raise SlackError("not_authed")
            answer = self.api.call(method, args)
        except SlackError as exc:
            call.error = exc.code
            return web.json_response(exc.answer(), headers=scopes)
        return await self._after(method, call) or web.json_response(answer, headers=scopes)

    def _granted(self) -> frozenset[str]:
        """The bot's scopes; when it has them all, every scope a method here needs."""
        if self.api.scopes is not None:
            return self.api.scopes
        return frozenset(scope for needs in METHOD_SCOPES.values() for scope in needs)

    async def _respond(self, request: web.Request) -> web.StreamResponse:
        """A `response_url` post: "ok", or HTTP 400 with Slack's error code as plain text."""
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return web.Response(status=400, text="invalid_payload")
        self.responses.append(body)
        call = Call("response_url", body)
        faulted = await self._before("response_url", call)
        if faulted is not None:
            return faulted
        target = self._targets.get(request.match_info["name"], ResponseTarget())
        try:
            self.api.respond(target, body)
        except SlackError as exc:
            return web.Response(status=400, text=exc.code)
        return await self._after("response_url", call) or web.Response(text="ok")

    async def _before(self, method: str, call: Call) -> web.Response | None:
        """Wait out a `delay`, then answer with an injected fault, if one is queued."""
        seconds = self.faults.delay_for(method)
        if seconds:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), seconds)
        if self._closing.is_set():
            call.status, call.error = 503, "closing"
            return web.Response(status=503, text="closing")
        injected = self.faults.injected(method, call.args)
        if injected is None:
            return None
        call.status, call.error = injected.response.status, injected.label
        return injected.response

    async def _after(self, method: str, call: Call) -> web.Response | None:
        """An `accept_then_fail` answer for a call that has taken effect, if one is queued;
        first, an `answer_late` holds the answer."""
        late = self.faults.late_answer(method)
        if late:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), late)
        lost = self.faults.lost_answer(method)
        if lost is None:
            return None
        call.status, call.error = lost.status, "answer_lost"
        if lost.hang:
            await self._closing.wait()
        return web.Response(status=lost.status, text="Slack lost the answer")

    # Socket Mode

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1})
        self.socket_connected.set()
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                self.socket_messages.append(json.loads(msg.data))
        self._sockets.remove(ws)
        return ws

    async def push(self, envelope: dict[str, Any]) -> None:
        """Send a Socket Mode envelope to every connected client."""
        for ws in list(self._sockets):
            await ws.send_json(envelope)


def _token(request: web.Request, args: Json) -> str:
    bearer = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return bearer or str(args.get("token") or "")


async def _read_args(request: web.Request) -> dict[str, Any]:
    """Query, form or JSON arguments; blocks, view, attachments and metadata JSON-decoded."""
    args: dict[str, Any] = dict(request.query)
    if request.method == "POST":
        if request.content_type == "application/json":
            body = await request.json() if request.can_read_body else None
            if isinstance(body, dict):
                args.update(body)
        else:
            form = await request.post()
            args.update({key: str(value) for key, value in form.items()})
    for key in _JSON_ARGS:
        value = args.get(key)
        if isinstance(value, str) and value.startswith(("[", "{")):
            with contextlib.suppress(ValueError):
                args[key] = json.loads(value)
    return args
