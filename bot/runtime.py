"""The composition root: builds store, Slack, engine, runner, commands, app and timers, in order.

Nothing is built at import time; `open_runtime` is an async context manager that tears down in
reverse order, so the aiohttp server and tests share one lifecycle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import build_app
from bot.deploy.adapter import SlackNotifier
from bot.dispatch import Dispatcher
from bot.incident.adapter import SlackIncidentChat
from bot.settings import Settings
from bot.signatures import RequestGuard
from bot.slack import SlackGateway
from bot.timers import Timers
from commands.access import Access
from commands.canary.usecases import CanaryCommands
from commands.deploy.planning import DeployPlanner
from commands.deploy.usecases import DeployCommands
from commands.gates.usecases import GateCommands
from commands.health.usecases import HealthCommands
from commands.incident.reminders import Reminders
from commands.incident.usecases import IncidentCommands
from commands.rollback.buttons import RollbackButtons
from commands.rollback.usecases import RollbackCommands
from commands.rollback.window import RollbackWindows
from commands.runs.lifecycle import Runs
from pipeline.aws.cloudwatch import BotoMetrics
from pipeline.aws.elbv2 import BotoLoadBalancer
from pipeline.aws.gates import BotoRecordStore, BotoRegistry, BotoSnapshots, BotoTasks
from pipeline.deploy import DeployEngine
from pipeline.fleet import Fleet
from pipeline.health import HealthChecker
from pipeline.kernel.config import Config
from pipeline.kernel.infra import RecordStore, Registry, Snapshots, Tasks
from pipeline.kernel.ports import Clock, Ecs
from pipeline.kernel.traffic import LoadBalancer, Metrics
from pipeline.preflight import Preflight
from pipeline.runner import Runner
from pipeline.tasks import OwnedTasks
from store.audit import AuditLog
from store.db import Store
from store.deploy.cards import CardViews
from store.deploy.locks import Locks
from store.deploy.repository import Deployments
from store.deploy.stages import RolloutStages
from store.incident.repository import Incidents
from store.requests import OpenRequests, SeenRequests

log = logging.getLogger(__name__)

SWEEP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class GateAdapters:
    """The AWS adapters of the gates (ECR, RDS, one-off tasks, S3); tests may wrap them."""

    registry: Registry
    snapshots: Snapshots
    tasks: Tasks
    records: RecordStore

    @classmethod
    def on_aws(cls) -> GateAdapters:
        return cls(BotoRegistry(), BotoSnapshots(), BotoTasks(), BotoRecordStore())


@dataclass
class Runtime:
    settings: Settings
    config: Config
    clock: Clock
    store: Store
    client: AsyncWebClient
    app: AsyncApp
    runner: Runner
    timers: Timers
    audit: AuditLog
    runs: Runs
    deploy: DeployCommands
    incident: IncidentCommands
    reminders: Reminders
    rollback: RollbackCommands
    rollback_windows: RollbackWindows
    gates: GateCommands
    seen: SeenRequests
    guard: RequestGuard | None
    notifier: SlackNotifier
    background: OwnedTasks

    async def fire(self, key: str) -> None:
        """A timer came due: do what its key names."""
        kind, _, subject = key.partition(":")
        if kind == "approval":
            await self.runs.expire(subject)
        elif kind == "reminder":
            await self.reminders.remind(subject)
        elif kind == "window":
            await self.rollback_windows.close_window(subject)
        elif kind == "lock":
            await self.gates.expire_lock(subject)
        else:
            log.error("no handler for timer %s", key)

    async def sweep(self) -> None:
        """The safety net: due work a timer missed (the database is the truth)."""
        for name, work in (
            ("orphan requests", self.runs.recover_orphans),
            ("timers", self.timers.run_due),
            ("approvals", self.runs.expire_due),
            ("reminders", self.reminders.send_due_reminders),
            ("rollback windows", self.rollback_windows.close_due_windows),
            ("cards", self.notifier.converge),
        ):
            try:
                async with asyncio.timeout(SWEEP_TIMEOUT_S):
                    await work()
            except Exception:
                log.exception("sweep of %s failed", name)


def build_slack_client(settings: Settings) -> AsyncWebClient:
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        # slack_sdk annotates an int, but hands it to aiohttp's ClientTimeout, which takes float.
        timeout=settings.slack_timeout_s,  # type: ignore[arg-type]
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
    )


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    config: Config,
    *,
    clock: Clock,
    ecs: Ecs,
    load_balancer: LoadBalancer | None = None,
    metrics: Metrics | None = None,
    gates: GateAdapters | None = None,
    start_scheduler: bool = True,
) -> AsyncIterator[Runtime]:
    """Build everything, re-attach unfinished runs, arm the timers, sweep once, yield."""
    store = await Store.open(settings.db_path)
    session = aiohttp.ClientSession()
    client = build_slack_client(settings)
    scheduler: AsyncIOScheduler | None = None
    runner: Runner | None = None
    background = OwnedTasks()
    try:
        deployments = Deployments(store)
        stages = RolloutStages(store)
        incidents = Incidents(store)
        slack = SlackGateway(client)
        notifier = SlackNotifier(
            slack,
            config,
            deployments=deployments,
            cards=CardViews(store),
            clock=clock,
            tasks=background,
        )
        timers = Timers(clock)
        aws = gates or GateAdapters.on_aws()
        locks = Locks(store)
        preflight = Preflight(
            config=config,
            locks=locks,
            registry=aws.registry,
            health=HealthChecker(session, clock),
        )
        load_balancer = load_balancer or BotoLoadBalancer()
        fleet = Fleet(ecs=ecs, load_balancer=load_balancer)
        engine = DeployEngine(
            config=config,
            deployments=deployments,
            stages=stages,
            ecs=ecs,
            fleet=fleet,
            health=HealthChecker(session, clock),
            notifier=notifier,
            timers=timers,
            clock=clock,
            load_balancer=load_balancer,
            metrics=metrics or BotoMetrics(),
            preflight=preflight,
            snapshots=aws.snapshots,
            tasks=aws.tasks,
            records=aws.records,
        )
        runner = Runner(
            engine=engine,
            deployments=deployments,
            clock=clock,
            shutdown_grace_s=settings.shutdown_grace_s,
        )
        access = Access(slack)
        runs = Runs(
            deployments=deployments, runner=runner, notifier=notifier, timers=timers, clock=clock
        )
        deploy = DeployCommands(
            config=config,
            deployments=deployments,
            planner=DeployPlanner(
                config=config,
                deployments=deployments,
                fleet=fleet,
                access=access,
                clock=clock,
                preflight=preflight,
            ),
            runs=runs,
            runner=runner,
            access=access,
            notifier=notifier,
            clock=clock,
        )
        gates_commands = GateCommands(
            config=config,
            deployments=deployments,
            locks=locks,
            runs=runs,
            runner=runner,
            access=access,
            timers=timers,
            clock=clock,
        )
        incident_chat = SlackIncidentChat(slack, config)
        reminders = Reminders(
            config=config, incidents=incidents, chat=incident_chat, timers=timers, clock=clock
        )
        incident = IncidentCommands(
            config=config,
            incidents=incidents,
            deployments=deployments,
            chat=incident_chat,
            access=access,
            reminders=reminders,
            clock=clock,
        )
        rollback = RollbackCommands(
            config=config,
            deployments=deployments,
            runs=runs,
            fleet=fleet,
            runner=runner,
            access=access,
            clock=clock,
        )
        rollback_buttons = RollbackButtons(
            config=config,
            deployments=deployments,
            incidents=incidents,
            runs=runs,
            fleet=fleet,
            rollback=rollback,
            clock=clock,
        )
        rollback_windows = RollbackWindows(
            deployments=deployments, runs=runs, engine=engine, timers=timers, clock=clock
        )
        audit = AuditLog(store)
        seen = SeenRequests(store)
        secret = settings.slack_signing_secret
        dispatcher = Dispatcher(
            slack=slack, notifier=notifier, audit=audit, journal=OpenRequests(store), clock=clock
        )
        app = build_app(
            settings,
            config,
            client,
            dispatcher,
            deploy=deploy,
            incident=incident,
            rollback=rollback,
            rollback_buttons=rollback_buttons,
            canary=CanaryCommands(
                config=config,
                deployments=deployments,
                stages=stages,
                runs=runs,
                runner=runner,
                access=access,
                clock=clock,
            ),
            gates=gates_commands,
            health=HealthCommands(config=config, fleet=fleet, health=HealthChecker(session, clock)),
        )
        runtime = Runtime(
            settings=settings,
            config=config,
            clock=clock,
            store=store,
            client=client,
            app=app,
            runner=runner,
            timers=timers,
            audit=audit,
            runs=runs,
            deploy=deploy,
            incident=incident,
            reminders=reminders,
            rollback=rollback,
            rollback_windows=rollback_windows,
            gates=gates_commands,
            seen=seen,
            guard=RequestGuard(secret.get_secret_value(), seen) if secret is not None else None,
            notifier=notifier,
            background=background,
        )
        timers.on_fire(runtime.fire)
        await access.warn_of_unknown_groups(config.user_groups())
        await runner.resume_all()
        await runs.arm_timers()
        await reminders.arm_timers()
        await rollback_windows.arm_timers()
        await gates_commands.arm_timers()

        async def has_deployment(deployment_id: str) -> bool:
            return await deployments.get(deployment_id) is not None

        await dispatcher.recover_interrupted(has_deployment)
        await runtime.sweep()
        if start_scheduler:
            scheduler = AsyncIOScheduler(timezone="UTC")
            timers.attach(scheduler)
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
        await background.close()
        await session.close()
        await store.close()
