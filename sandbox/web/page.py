"""The sandbox page: a Slack-like client of the local Slack, served by aiohttp on 127.0.0.1.

`GET /` is the page (plain HTML, CSS and JavaScript from `static/`); `/api/...` gives it the
channels, messages, threads, modals and the bot's App Home as one chosen person sees them (HTML
from `render`), takes what that person types and clicks and sends it to the bot through
`AppDelivery` (opening the Home tab is Slack's `app_home_opened` event), and controls the demo
services. `GET /api/events` streams a line per change (server-sent events), so the page
redraws itself when the bot posts or edits a card.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import aiohttp
from aiohttp import web

from sandbox.people import Person
from sandbox.replicas import Replicas
from sandbox.services import DemoServices, Mode
from sandbox.slack import AppDelivery, LocalSlack, SlackError
from sandbox.web.messages import Timeline, view_summary
from sandbox.web.render import blocks, modal, plain_topic

log = logging.getLogger(__name__)

STATIC: Final = Path(__file__).resolve().parent / "static"
HEARTBEAT_S: Final = 15.0
SHUTDOWN_TIMEOUT_S: Final = 2.0
RECORDS_SHOWN: Final = 8  # the newest deployment records listed under the services
_STATIC_TYPES: Final = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}


def _escape(text: str) -> str:
    """Typed text as Slack stores it: `&`, `<` and `>` escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Page:
    """The page's server. `start()` serves it; `close()` ends the event streams and stops it."""

    def __init__(
        self,
        slack: LocalSlack,
        delivery: AppDelivery,
        services: DemoServices,
        *,
        people: Sequence[Person],
        groups: dict[str, str],
        commands: Sequence[str],
        home: str,
        host: str = "127.0.0.1",
        port: int = 0,
        replicas: Replicas | None = None,
    ) -> None:
        self.slack = slack
        self.delivery = delivery
        self.services = services
        self.people = list(people)
        self.commands = tuple(commands)
        self.home = home
        self.replicas = replicas
        self.timeline = Timeline(slack.workspace, groups=groups)
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self._listeners: list[asyncio.Queue[dict[str, Any] | None]] = []
        self._forwarder: asyncio.Task[None] | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("The page has no address until start() has run.")
        return self._url

    # Lifecycle

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/api/people", self._people)
        app.router.add_get("/api/channels", self._channels)
        app.router.add_get("/api/channel/{channel}", self._channel)
        app.router.add_get("/api/thread/{channel}/{ts}", self._thread)
        app.router.add_get("/api/modal", self._modal)
        app.router.add_get("/api/home", self._home)
        app.router.add_post("/api/home/open", self._open_home)
        app.router.add_post("/api/command", self._command)
        app.router.add_post("/api/action", self._action)
        app.router.add_post("/api/submit", self._submit)
        app.router.add_post("/api/close", self._close_modal)
        app.router.add_get("/api/services", self._services)
        app.router.add_post("/api/services/fault", self._fault)
        app.router.add_get("/api/events", self._events)
        app.router.add_get("/api/replicas", self._replicas)
        app.router.add_post("/api/replicas/kill", self._kill_replica)
        app.router.add_post("/api/replicas/start", self._start_replica)
        queue = self.slack.subscribe()
        self._forwarder = asyncio.create_task(self._forward(queue))
        self.services.on_change = lambda: self._notify({"kind": "services"})
        if self.replicas is not None:
            self.replicas.on_change = lambda: self._notify({"kind": "replicas"})
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._url = f"http://{host}:{port}/"

    async def close(self) -> None:
        self.services.on_change = lambda: None
        for queue in list(self._listeners):
            queue.put_nowait(None)
        if self._forwarder is not None:
            self._forwarder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._forwarder
            self._forwarder = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _forward(self, queue: asyncio.Queue[Any]) -> None:
        try:
            while True:
                change = await queue.get()
                if change.data.get("ts") and change.kind.value.startswith("message"):
                    self.timeline.saw(change.channel, str(change.data["ts"]))
                self._notify({"kind": change.kind.value, "channel": change.channel})
        finally:
            self.slack.unsubscribe(queue)

    def _notify(self, event: dict[str, Any]) -> None:
        for listener in self._listeners:
            listener.put_nowait(event)

    # Reading

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = STATIC / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise web.HTTPNotFound
        content_type = _STATIC_TYPES.get(path.suffix, "application/octet-stream")
        return web.Response(body=path.read_bytes(), content_type=content_type, charset="utf-8")

    async def _people(self, request: web.Request) -> web.Response:
        people = [{"id": p.id, "name": p.name, "role": p.role} for p in self.people]
        return web.json_response(
            {"people": people, "home": self.home, "commands": list(self.commands)}
        )

    def _user(self, request: web.Request) -> str:
        user = request.query.get("user", "")
        if user not in {p.id for p in self.people}:
            raise web.HTTPBadRequest(text="unknown user")
        return user

    async def _channels(self, request: web.Request) -> web.Response:
        user = self._user(request)
        shown = [
            {
                "id": c.id,
                "name": c.name,
                "topic": plain_topic(c.topic, self.timeline.names),
                "private": c.is_private,
                "member": user in c.members,
            }
            for c in self.slack.workspace.channels.values()
            if not c.is_archived and (not c.is_private or user in c.members)
        ]
        return web.json_response({"channels": shown})

    def _channel_of(self, request: web.Request) -> str:
        channel = request.match_info["channel"]
        found = self.slack.workspace.find_channel(channel)
        if found is None:
            raise web.HTTPNotFound(text="no such channel")
        return found.id

    async def _channel(self, request: web.Request) -> web.Response:
        user = self._user(request)
        channel = self.slack.workspace.channel(self._channel_of(request))
        return web.json_response(
            {
                "id": channel.id,
                "name": channel.name,
                "topic": plain_topic(channel.topic, self.timeline.names),
                "members": len(channel.members),
                "html": self.timeline.channel(channel.id, user=user),
            }
        )

    async def _thread(self, request: web.Request) -> web.Response:
        user = self._user(request)
        channel = self._channel_of(request)
        try:
            body = self.timeline.thread(channel, request.match_info["ts"], user=user)
        except SlackError:
            raise web.HTTPNotFound(text="no such thread") from None
        return web.json_response({"html": body})

    def _open_view_of(self, user: str) -> Any:
        """The newest modal opened with one of `user`'s triggers, if one is open."""
        for view in reversed(list(self.slack.workspace.views.values())):
            if self.delivery.trigger_user.get(view.trigger_id or "") == user:
                return view
        return None

    async def _modal(self, request: web.Request) -> web.Response:
        view = self._open_view_of(self._user(request))
        if view is None:
            return web.json_response({"modal": None})
        body = modal(view.view, self.timeline.names)
        return web.json_response(
            {"modal": {"id": view.id, "hash": view.hash, "html": body, **view_summary(view.view)}}
        )

    async def _home(self, request: web.Request) -> web.Response:
        """The bot's Home tab as Slack holds it for the person (None before it published one)."""
        published = self.slack.workspace.home_views.get(self._user(request))
        if published is None:
            return web.json_response({"home": None})
        body = blocks(published.view.get("blocks") or [], self.timeline.names)
        return web.json_response(
            {"home": {"id": published.id, "hash": published.hash, "html": body}}
        )

    async def _open_home(self, request: web.Request) -> web.Response:
        """The person opens the bot's Home tab: Slack tells the bot (`app_home_opened`)."""
        body = await self._json(request)
        user = str(body.get("user", ""))
        if user not in {p.id for p in self.people}:
            raise web.HTTPBadRequest(text="unknown user")
        try:
            ack = await self.delivery.app_home_opened(user)
        except (aiohttp.ClientError, TimeoutError):
            return web.json_response({"ok": False, "error": "The app did not answer."})
        return web.json_response({"ok": ack.status == 200, "status": ack.status})

    # Acting

    async def _json(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="expected JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="expected a JSON object")
        return body

    async def _command(self, request: web.Request) -> web.Response:
        """What the person typed in the composer: a slash command, or a message to the channel."""
        body = await self._json(request)
        user = str(body.get("user", ""))
        if user not in {p.id for p in self.people}:
            raise web.HTTPBadRequest(text="unknown user")
        channel = str(body.get("channel", ""))
        if self.slack.workspace.find_channel(channel) is None:
            raise web.HTTPBadRequest(text="unknown channel")
        text = str(body.get("text", "")).strip()
        if not text:
            return web.json_response({"ok": False, "error": "empty"})
        if not text.startswith("/"):
            self.slack.workspace.post(channel, user=user, text=_escape(text))
            return web.json_response({"ok": True})
        command, _, rest = text.partition(" ")
        if command not in self.commands:
            self._slackbot(
                channel,
                user,
                f"`{_escape(command)}` is not a valid command. In Slack, all messages that start "
                'with the "/" character are interpreted as commands. The app here has '
                + ", ".join(f"`{c}`" for c in self.commands)
                + ".",
            )
            return web.json_response({"ok": False, "error": "not_a_command"})
        try:
            ack = await self.delivery.command(command, rest.strip(), user=user, channel=channel)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("the app did not answer %s: %s", command, exc)
            self._slackbot(channel, user, f'{command} failed with the error "operation_timeout"')
            return web.json_response({"ok": False, "error": "operation_timeout"})
        if ack.status != 200:
            self._slackbot(channel, user, f'{command} failed with the error "dispatch_failed"')
            return web.json_response({"ok": False, "error": "dispatch_failed"})
        return web.json_response({"ok": True})

    def _slackbot(self, channel: str, user: str, text: str) -> None:
        self.slack.workspace.post_ephemeral(channel, user=user, text=text, via="slackbot")

    async def _action(self, request: web.Request) -> web.Response:
        """A click on a button of a message: sent to the app as Slack's block_actions."""
        body = await self._json(request)
        user = str(body.get("user", ""))
        if user not in {p.id for p in self.people}:
            raise web.HTTPBadRequest(text="unknown user")
        channel, ts = str(body.get("channel", "")), str(body.get("ts", ""))
        block_id, action_id = str(body.get("block_id", "")), str(body.get("action_id", ""))
        if body.get("surface") == "home":
            return await self._home_action(user, block_id, action_id)
        rendered: dict[str, Any] | None = None
        ephemeral_ts: str | None = None
        try:
            message = self.slack.workspace.message(channel, ts)
            blocks = message.blocks or []
            rendered = self.slack.workspace.render(message)
        except SlackError:
            # Not in the channel: one of this person's own ephemeral messages, or nothing.
            mine = [
                e
                for e in self.slack.workspace.ephemerals
                if e.ts == ts and e.user == user and e.channel == channel
            ]
            if not mine:
                raise web.HTTPNotFound(text="no such message") from None
            blocks, ephemeral_ts = mine[0].blocks or [], ts
        element = _find_element(blocks, block_id, action_id)
        if element is None:
            raise web.HTTPNotFound(text="no such button")
        action = _pressed(element, block_id)
        try:
            ack = await self.delivery.block_actions(
                action, user=user, channel=channel, message=rendered, ephemeral_ts=ephemeral_ts
            )
        except (aiohttp.ClientError, TimeoutError):
            return web.json_response({"ok": False, "error": "The app did not answer."})
        return web.json_response({"ok": ack.status == 200, "status": ack.status})

    async def _home_action(self, user: str, block_id: str, action_id: str) -> web.Response:
        """A click on a button of the person's Home tab: block_actions from a view."""
        published = self.slack.workspace.home_views.get(user)
        element = None
        if published is not None:
            element = _find_element(published.view.get("blocks") or [], block_id, action_id)
        if element is None:
            raise web.HTTPNotFound(text="no such button")
        try:
            ack = await self.delivery.home_action(_pressed(element, block_id), user=user)
        except (aiohttp.ClientError, TimeoutError):
            return web.json_response({"ok": False, "error": "The app did not answer."})
        return web.json_response({"ok": ack.status == 200, "status": ack.status})

    async def _submit(self, request: web.Request) -> web.Response:
        """A modal's Submit: required fields are checked here first, as Slack's client does."""
        body = await self._json(request)
        user = str(body.get("user", ""))
        view = self._open_view_of(user)
        if view is None or view.id != body.get("view_id"):
            raise web.HTTPNotFound(text="that modal is not open")
        given = body.get("values")
        typed: dict[str, Any] = given if isinstance(given, dict) else {}
        values, errors = _state(view.view, typed)
        names = self.timeline.names
        if errors:
            return web.json_response(
                {"ok": False, "html": modal(view.view, names, values=typed, errors=errors)}
            )
        rendered = self.slack.workspace.render_view(view)
        try:
            ack = await self.delivery.view_submission(rendered, values, user=user)
        except (aiohttp.ClientError, TimeoutError):
            return web.json_response({"ok": False, "error": "The app did not answer."})
        if ack.errors:
            return web.json_response(
                {"ok": False, "html": modal(view.view, names, values=typed, errors=ack.errors)}
            )
        return web.json_response({"ok": ack.status == 200, "closed": view.id not in self._views})

    @property
    def _views(self) -> dict[str, Any]:
        return self.slack.workspace.views

    async def _close_modal(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        view_id = str(body.get("view_id", ""))
        if view_id in self._views:
            self.slack.workspace.close_view(view_id)
        return web.json_response({"ok": True})

    # Demo services

    async def _services(self, request: web.Request) -> web.Response:
        overview = self.services.overview()
        snapshots = {env: await self.services.snapshot(env) for env in overview["environments"]}
        rows = []
        for service in overview["services"]:
            where = {}
            for env in overview["environments"]:
                version = snapshots[env].running.get(service)
                answer = self.services.answers.get((env, service))
                colours = snapshots[env].colours.get(service)
                where[env] = {
                    "version": version,
                    "mode": self.services.mode_of(service, version).value,
                    "last": None
                    if answer is None
                    else {"status": answer.status, "path": answer.path, "version": answer.version},
                    "colours": None
                    if colours is None
                    else {
                        c: {
                            "version": state.version,
                            "weight": state.weight,
                            "tasks": state.desired,
                        }
                        for c, state in colours.items()
                    },
                }
            faults = {v: m.value for (s, v), m in self.services.faults.items() if s == service}
            rows.append({"service": service, "running": where, "faults": faults})
        records = (await self.services.record_keys())[:RECORDS_SHOWN]
        return web.json_response({**overview, "rows": rows, "records": records})

    async def _fault(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        overview = self.services.overview()
        service, version = str(body.get("service", "")), str(body.get("version", ""))
        if service not in overview["services"] or version not in overview["versions"]:
            raise web.HTTPBadRequest(text="unknown service or version")
        try:
            mode = Mode(str(body.get("mode", "")))
        except ValueError:
            raise web.HTTPBadRequest(text="unknown mode") from None
        self.services.set_fault(service, version, mode)
        return web.json_response({"ok": True})

    # Replicas (`--replicas N`)

    async def _replicas(self, request: web.Request) -> web.Response:
        """Each replica's state and the newest runs' owners (the `leases` table); `replicas`
        is null when the sandbox runs one bot."""
        if self.replicas is None:
            return web.json_response({"replicas": None, "runs": []})
        return web.json_response(await self.replicas.leases())

    def _replica_named(self, body: dict[str, Any]) -> str:
        name = str(body.get("replica", ""))
        if self.replicas is None or name not in self.replicas.replicas:
            raise web.HTTPBadRequest(text="unknown replica")
        return name

    async def _kill_replica(self, request: web.Request) -> web.Response:
        """Kill a replica abruptly (SIGKILL): its leases are not given up; they lapse."""
        name = self._replica_named(await self._json(request))
        assert self.replicas is not None
        await self.replicas.kill(name)
        return web.json_response({"ok": True})

    async def _start_replica(self, request: web.Request) -> web.Response:
        """Start a killed replica again, under its id; answers once it serves."""
        name = self._replica_named(await self._json(request))
        assert self.replicas is not None
        try:
            await self.replicas.start(name)
        except RuntimeError as exc:
            return web.json_response({"ok": False, "error": str(exc)})
        return web.json_response({"ok": True})

    # Live updates

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._listeners.append(queue)
        try:
            await response.write(b"retry: 1000\n\n")
            while True:
                try:
                    async with asyncio.timeout(HEARTBEAT_S):
                        event = await queue.get()
                except TimeoutError:
                    await response.write(b": still here\n\n")
                    continue
                if event is None:
                    break
                await response.write(f"data: {json.dumps(event)}\n\n".encode())
        except ConnectionResetError:
            pass
        finally:
            self._listeners.remove(queue)
        return response


def _pressed(element: dict[str, Any], block_id: str) -> dict[str, Any]:
    """The `actions` entry of a block_actions payload for a press of `element`."""
    return {
        "type": element.get("type", "button"),
        "block_id": block_id,
        "action_id": element.get("action_id", ""),
        "text": element.get("text"),
        "value": element.get("value", ""),
    }


def _find_element(blocks: list[dict[str, Any]], block_id: str, action_id: str) -> Any:
    for block in blocks:
        if str(block.get("block_id", "")) != block_id:
            continue
        elements = list(block.get("elements") or [])
        if isinstance(block.get("accessory"), dict):
            elements.append(block["accessory"])
        for element in elements:
            if element.get("action_id") == action_id:
                return element
    return None


def _state(view: dict[str, Any], typed: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The view's `state.values` for what was typed, and the required fields left empty."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for block in view.get("blocks") or []:
        if block.get("type") != "input":
            continue
        block_id = str(block.get("block_id", ""))
        element = block.get("element") or {}
        action_id = str(element.get("action_id", ""))
        if element.get("type") == "multi_static_select":
            raw = typed.get(block_id)
            picked = {str(v) for v in raw} if isinstance(raw, list) else set()
            if not picked and not block.get("optional"):
                errors[block_id] = "Please complete this required field."
            chosen = [o for o in element.get("options") or [] if o.get("value") in picked]
            values[block_id] = {
                action_id: {"type": "multi_static_select", "selected_options": chosen}
            }
            continue
        given = str(typed.get(block_id) or "")
        if not given and not block.get("optional"):
            errors[block_id] = "Please complete this required field."
        if element.get("type") == "static_select":
            option = next(
                (o for o in element.get("options") or [] if o.get("value") == given), None
            )
            values[block_id] = {action_id: {"type": "static_select", "selected_option": option}}
        else:
            values[block_id] = {action_id: {"type": "plain_text_input", "value": given or None}}
    return values, errors
