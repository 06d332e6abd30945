"""One aiohttp app on $PORT: POST /slack/events (HTTP mode) and GET /healthz."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

from bot.runtime import Runtime, open_runtime
from bot.settings import Settings
from pipeline.kernel.config import Config
from pipeline.kernel.ports import Clock, Ecs

RUNTIME = web.AppKey("runtime", Runtime)

EVENTS_PATH = "/slack/events"


def build_web_app(
    settings: Settings, config: Config, *, clock: Clock, ecs: Ecs, start_scheduler: bool = True
) -> web.Application:
    """The server. Its cleanup_ctx opens the runtime at startup and closes it at cleanup."""
    web_app = web.Application()

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        async with open_runtime(
            settings, config, clock=clock, ecs=ecs, start_scheduler=start_scheduler
        ) as runtime:
            app[RUNTIME] = runtime
            yield

    web_app.cleanup_ctx.append(lifecycle)
    web_app.router.add_get("/healthz", healthz)
    if not settings.socket_mode:
        web_app.router.add_post(EVENTS_PATH, slack_events)
    return web_app


async def slack_events(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    bolt_response = await runtime.app.async_dispatch(await to_bolt_request(request))
    return await to_aiohttp_response(bolt_response)


async def healthz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    healthy = await runtime.store.ping()
    body = {
        "status": "ok" if healthy else "unavailable",
        "database": "ok" if healthy else "unreachable",
        "mode": "socket" if runtime.settings.socket_mode else "http",
        "runs_in_progress": len(runtime.runner.active),
    }
    return web.json_response(body, status=200 if healthy else 503)
