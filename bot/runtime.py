"""The composition root: builds store, clients, engine, runner, Bolt app and scheduler, in order.

Nothing is built at import time; `open_runtime` is an async context manager that tears down in
reverse order, so the aiohttp server and tests share one lifecycle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot import deploy_listeners, incident_listeners, rollback_listeners
from bot.context import AppContext
from bot.errors import user_text
from bot.incident_listeners import SlackIncidentChat
from bot.notifier import SlackDirectory, SlackNotifier
from bot.settings import Settings
from commands.deploy import DeployCommands
from commands.incident import IncidentCommands
from pipeline.config import Config
from pipeline.deploy import DeployEngine
from pipeline.health import HealthChecker
from pipeline.ports import Clock, Ecs
from pipeline.runner import Runner
from store.audit import AuditLog
from store.db import Store
from store.deployments import Deployments
from store.incidents import Incidents

log = logging.getLogger(__name__)

SLACK_TIMEOUT_S = 15
SWEEP_TIMEOUT_S = 60.0

Sweeper = Callable[[], Awaitable[None]]


@dataclass
class Runtime:
    settings: Settings
    config: Config
    clock: Clock
    store: Store
    client: AsyncWebClient
    app: AsyncApp
    runner: Runner
    ctx: AppContext
    sweepers: list[Sweeper] = field(default_factory=list)

    async def sweep(self) -> None:
        """Do what time has made due (expired approvals, reminders). The database is the truth."""
        for sweeper in self.sweepers:
            try:
                async with asyncio.timeout(SWEEP_TIMEOUT_S):
                    await sweeper()
            except Exception:
                log.exception("sweep %s failed", getattr(sweeper, "__name__", sweeper))


def build_slack_client(settings: Settings) -> AsyncWebClient:
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=SLACK_TIMEOUT_S,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
    )


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    config: Config,
    *,
    clock: Clock,
    ecs: Ecs,
    start_scheduler: bool = True,
) -> AsyncIterator[Runtime]:
    """Build everything, re-attach unfinished runs, run one sweep, and yield the runtime."""
    store = await Store.open(settings.db_path)
    session = aiohttp.ClientSession()
    client = build_slack_client(settings)
    scheduler: AsyncIOScheduler | None = None
    runner: Runner | None = None
    try:
        deployments = Deployments(store)
        notifier = SlackNotifier(client, config)
        engine = DeployEngine(
            config=config,
            deployments=deployments,
            ecs=ecs,
            health=HealthChecker(session, clock),
            notifier=notifier,
            clock=clock,
        )
        runner = Runner(
            engine=engine,
            deployments=deployments,
            clock=clock,
            shutdown_grace_s=settings.shutdown_grace_s,
        )
        deploy = DeployCommands(
            config=config,
            deployments=deployments,
            engine=engine,
            runner=runner,
            directory=SlackDirectory(client),
            clock=clock,
        )
        incident = IncidentCommands(
            config=config,
            incidents=Incidents(store),
            deployments=deployments,
            chat=SlackIncidentChat(client, config),
            clock=clock,
        )
        ctx = AppContext(
            config=config,
            clock=clock,
            client=client,
            notifier=notifier,
            audit=AuditLog(store),
            deploy=deploy,
            incident=incident,
        )
        app = build_app(settings, client, ctx)
        runtime = Runtime(
            settings=settings,
            config=config,
            clock=clock,
            store=store,
            client=client,
            app=app,
            runner=runner,
            ctx=ctx,
        )

        async def expire_approvals() -> None:
            for run in await deploy.expire_due():
                await notifier.redraw(run)

        async def remind_incidents() -> None:
            await incident.send_due_reminders()

        runtime.sweepers.append(expire_approvals)
        runtime.sweepers.append(remind_incidents)
        await runner.resume_all()
        await runtime.sweep()
        if start_scheduler:
            scheduler = AsyncIOScheduler(timezone="UTC")
            scheduler.add_job(
                runtime.sweep,
                "interval",
                seconds=settings.sweep_interval_s,
                id="sweep",
                max_instances=1,
                coalesce=True,
            )
            scheduler.start()
        yield runtime
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        if runner is not None:
            await runner.close()
        await session.close()
        await store.close()


def build_app(settings: Settings, client: AsyncWebClient, ctx: AppContext) -> AsyncApp:
    secret = settings.slack_signing_secret
    app = AsyncApp(
        client=client,
        signing_secret=secret.get_secret_value() if secret else "",
        process_before_response=False,
        request_verification_enabled=not settings.socket_mode,
    )

    @app.error
    async def on_error(error: Exception) -> None:
        user_text(error)

    deploy_listeners.register(app, ctx)
    incident_listeners.register(app, ctx)
    rollback_listeners.register(app, ctx)
    return app
