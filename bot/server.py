"""One aiohttp app on $PORT: POST /slack/events (HTTP mode), GET /healthz and GET /metrics
(or /metrics on a port of its own: CHATOPS_METRICS_PORT).

Every request to /slack/events passes `bot.signatures.RequestGuard` before Bolt sees it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.runtime import Runtime, open_runtime
from bot.settings import Settings
from bot.signatures import Refused
from pipeline.kernel.config import Config
from pipeline.kernel.ports import Clock, Ecs

log = logging.getLogger(__name__)

RUNTIME = web.AppKey("runtime", Runtime)

EVENTS_PATH = "/slack/events"
METRICS_PATH = "/metrics"


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
            if settings.metrics_port is not None and settings.metrics_apart:
                async with metrics_server(runtime, host=settings.host, port=settings.metrics_port):
                    yield
            else:
                yield

    web_app.cleanup_ctx.append(lifecycle)
    web_app.router.add_get("/healthz", healthz)
    if not settings.metrics_apart:
        web_app.router.add_get(METRICS_PATH, metrics)
    if not settings.socket_mode:
        web_app.router.add_post(EVENTS_PATH, slack_events)
    return web_app


async def slack_events(request: web.Request) -> web.Response:
    """Check the request (signature, timestamp, form, replay), then hand it to Bolt."""
    runtime = request.app[RUNTIME]
    arrived = time.perf_counter()
    verdict = (
        await runtime.guard.check(request)
        if runtime.guard is not None
        else Refused(401, "no signing secret is configured")
    )
    if isinstance(verdict, Refused):
        # One line, without the body (attacker-chosen text, a real request's response_url),
        # the headers or the signature.
        log.warning("refused a request from %s: %s", request.remote, verdict.reason)
        return verdict.response()
    if verdict.replay:
        log.warning(
            "acknowledged a replayed request from %s without acting on it again", request.remote
        )
        return web.Response(status=200)
    bolt_request = AsyncBoltRequest(
        body=verdict.body,
        query=request.query_string,
        headers=request.headers,  # type: ignore[arg-type]
    )
    response = await to_aiohttp_response(await runtime.app.async_dispatch(bolt_request))
    runtime.meter.acked(time.perf_counter() - arrived)
    return response


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


async def metrics(request: web.Request) -> web.StreamResponse:
    return await request.app[RUNTIME].meter.scrape(request)


@asynccontextmanager
async def metrics_server(runtime: Runtime, *, host: str, port: int) -> AsyncIterator[None]:
    """A second server on `port` that answers `GET /metrics` alone."""
    app = web.Application()
    app[RUNTIME] = runtime
    app.router.add_get(METRICS_PATH, metrics)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        log.info("serving /metrics on port %d", port)
        yield
    finally:
        await runner.cleanup()
