"""The composition root: opens the store and Slack, wires the features (`bot/wiring.py`), starts.

Nothing is built at import time; `open_runtime` is an async context manager that tears down in
reverse order, so the aiohttp server and tests share one lifecycle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import build_app
from bot.deploy.adapter import SlackNotifier
from bot.dispatch import Dispatcher
from bot.home import HomeTabs
from bot.metrics import Meter, MeteredWebClient
from bot.settings import Settings
from bot.signatures import RequestGuard
from bot.timers import Timers
from bot.wiring import (
    Core,
    GateAdapters,
    on_aws,
    wire_canary,
    wire_core,
    wire_deploy,
    wire_gates,
    wire_health,
    wire_home,
    wire_incident,
    wire_rollback,
    wire_watch,
)
from commands.deploy.usecases import DeployCommands
from commands.gates.usecases import GateCommands
from commands.incident.reminders import Reminders
from commands.incident.usecases import IncidentCommands
from commands.rollback.usecases import RollbackCommands
from commands.rollback.window import RollbackWindows
from commands.runs.lifecycle import Runs
from commands.watch import PostDeployWatch
from pipeline.aws.calls import listening
from pipeline.kernel.config import Config
from pipeline.kernel.ports import Clock, Ecs, TimerKind
from pipeline.kernel.traffic import LoadBalancer, Metrics
from pipeline.leases import LeaseKeeper
from pipeline.runner import Runner
from pipeline.tasks import OwnedTasks
from store.audit import AuditLog
from store.db import Store, StoreError
from store.leases import presence_lease, stamp
from store.prune import Pruner
from store.requests import OpenRequests, SeenRequests

log = logging.getLogger(__name__)

SWEEP_TIMEOUT_S = 60.0
PRUNE_TIMEOUT_S = 60.0
SECONDS_PER_DAY = 86400.0
# How often a replica checks, without the database, that it may still act for its runs.
FENCE_CHECK_S = 1.0


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
    dispatcher: Dispatcher
    watch: PostDeployWatch
    meter: Meter
    home: HomeTabs
    keeper: LeaseKeeper
    journal: OpenRequests
    has_deployment: Callable[[str], Awaitable[bool]]
    # Replicas whose presence lease this one saw lapse (their timers re-armed here).
    mourned: set[str] = field(default_factory=set)

    async def tend(self) -> None:
        """Every `lease_renew_s`: renew this replica's leases, adopt the runs whose lease
        lapsed, and take over what a replica that died left (its timers, its open requests)."""
        try:
            async with asyncio.timeout(self.keeper.renew_s):
                await self.runner.tend()
        except (StoreError, TimeoutError):
            log.warning(
                "could not renew the leases of replica %s; its runs stop %gs before another "
                "replica may take them over",
                self.keeper.replica,
                self.keeper.margin_s,
                exc_info=True,
            )
            self.runner.enforce()
            return
        try:
            async with asyncio.timeout(SWEEP_TIMEOUT_S):
                await self.runner.adopt()
                await self._outlive()
        except Exception:
            log.exception("taking over the work of lapsed leases failed; trying again")

    async def _outlive(self) -> None:
        """A replica whose presence lapsed is dead: arm here every timer from the database
        (due ones fire at once, claimed by one replica) and finish its open requests."""
        now = stamp(self.clock.now())
        presences = await self.keeper.leases.presences()
        lapsed = {r for r, until in presences.items() if until < now} - {self.keeper.replica}
        newly = lapsed - self.mourned
        self.mourned = lapsed
        if newly:
            log.warning("replica(s) %s stopped renewing: taking over their timers", sorted(newly))
            await self.arm_timers()
        dead = sorted(
            r
            for r in await self.journal.replicas_with_open()
            if r != self.keeper.replica and presences.get(r, "") < now
        )
        if dead:
            await self.dispatcher.recover_interrupted(self.has_deployment, replicas=dead)

    async def _recover_orphans(self) -> None:
        await self.runs.recover_orphans(elsewhere=self._handled_elsewhere)

    async def _handled_elsewhere(self, ref: str) -> bool:
        """Whether another live replica has the request about `ref` open (posting its card)."""
        others = [r for r in await self.journal.takers(ref) if r != self.keeper.replica]
        return bool(others) and bool(await self.keeper.leases.alive(others, now=self.clock.now()))

    async def arm_timers(self) -> None:
        """Arm every timer kept in the database (at start-up, and when a replica died)."""
        await self.runs.arm_timers()
        await self.reminders.arm_timers()
        await self.rollback_windows.arm_timers()
        await self.gates.arm_timers()
        await self.watch.arm_timers()

    async def fire(self, key: str) -> None:
        """A timer came due: do what its key names (the App Homes follow)."""
        try:
            await self._fire(key)
        finally:
            self.home.changed()

    async def _fire(self, key: str) -> None:
        kind, _, subject = key.partition(":")
        if kind == TimerKind.APPROVAL:
            await self.runs.expire(subject)
        elif kind == TimerKind.REMINDER:
            await self.reminders.remind(subject)
        elif kind == TimerKind.WINDOW:
            await self.rollback_windows.close_window(subject)
        elif kind == TimerKind.LOCK:
            await self.gates.expire_lock(subject)
        elif kind == TimerKind.WATCH:
            await self.watch.check(subject)
        else:
            log.error("no handler for timer %s", key)

    async def sweep(self) -> None:
        """The safety net: due work a timer missed (the database is the truth)."""
        for name, work in (
            ("orphan requests", self._recover_orphans),
            ("timers", self.timers.run_due),
            ("approvals", self.runs.expire_due),
            ("reminders", self.reminders.send_due_reminders),
            ("rollback windows", self.rollback_windows.close_due_windows),
            ("watches", self.watch.check_due),
            ("watches missed", self.watch.begin_missed),
            ("cards", self.notifier.converge),
            ("app homes", self.home.refresh),
        ):
            try:
                async with asyncio.timeout(SWEEP_TIMEOUT_S):
                    await work()
            except Exception:
                log.exception("sweep of %s failed", name)

    async def prune(self) -> None:
        """Delete audit rows past their retention and replay keys past Slack's window."""
        pruner = Pruner(
            self.store, audit_retention_s=self.settings.audit_retention_days * SECONDS_PER_DAY
        )
        try:
            async with asyncio.timeout(PRUNE_TIMEOUT_S):
                pruned = await pruner.prune(self.clock.now())
        except Exception:
            log.exception("pruning old audit rows and replay keys failed; retrying later")
            return
        if pruned.audit_rows or pruned.replay_keys:
            log.info(
                "pruned %d audit rows older than %g days and %d expired replay keys",
                pruned.audit_rows,
                self.settings.audit_retention_days,
                pruned.replay_keys,
            )


def build_slack_client(settings: Settings, meter: Meter) -> AsyncWebClient:
    return MeteredWebClient(
        meter=meter,
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        # slack_sdk annotates an int, but hands it to aiohttp's ClientTimeout, which takes float.
        timeout=settings.slack_timeout_s,
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
    store = await Store.open(settings.database)
    session = aiohttp.ClientSession()
    meter = Meter(config, store)
    client = build_slack_client(settings, meter)
    scheduler: AsyncIOScheduler | None = None
    runner: Runner | None = None
    keeper: LeaseKeeper | None = None
    background = OwnedTasks()
    hearing = ExitStack()
    try:
        hearing.enter_context(listening(meter.aws_call))
        outside = on_aws(
            session, ecs=ecs, load_balancer=load_balancer, metrics=metrics, gates=gates
        )
        core = wire_core(
            settings,
            config,
            clock=clock,
            store=store,
            client=client,
            outside=outside,
            background=background,
            meter=meter,
        )
        runner = core.runner
        keeper = core.keeper
        runtime = compose(settings, core, client)
        await start(runtime, core)
        if start_scheduler:
            scheduler = schedule(runtime)
        yield runtime
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        if runner is not None:
            await runner.close()
        if keeper is not None:
            await _leave(keeper)
        await background.close()
        await session.close()
        hearing.close()
        await store.close()


def compose(settings: Settings, core: Core, client: AsyncWebClient) -> Runtime:
    """Every feature wired from `core`, the Bolt app that routes to them, and the Runtime."""
    deploy = wire_deploy(core)
    gates = wire_gates(core)
    incident = wire_incident(core)
    rollback = wire_rollback(core)
    watch = wire_watch(core, rollback)
    home = wire_home(core)
    audit = AuditLog(core.store)
    journal = OpenRequests(core.store, replica=core.keeper.replica)
    dispatcher = Dispatcher(
        slack=core.slack,
        notifier=core.notifier,
        audit=audit,
        journal=journal,
        clock=core.clock,
        home=home,
    )
    app = build_app(
        settings,
        core.config,
        client,
        dispatcher,
        deploy=deploy,
        incident=incident.commands,
        rollback=rollback.commands,
        rollback_buttons=rollback.buttons,
        canary=wire_canary(core),
        gates=gates,
        health=wire_health(core),
        home=home,
    )
    seen = SeenRequests(core.store)
    secret = settings.slack_signing_secret

    async def has_deployment(deployment_id: str) -> bool:
        return await core.deployments.get(deployment_id) is not None

    return Runtime(
        settings=settings,
        config=core.config,
        clock=core.clock,
        store=core.store,
        client=client,
        app=app,
        runner=core.runner,
        timers=core.timers,
        audit=audit,
        runs=core.runs,
        deploy=deploy,
        incident=incident.commands,
        reminders=incident.reminders,
        rollback=rollback.commands,
        rollback_windows=rollback.windows,
        gates=gates,
        seen=seen,
        guard=RequestGuard(secret.get_secret_value(), seen) if secret is not None else None,
        notifier=core.notifier,
        background=core.background,
        dispatcher=dispatcher,
        watch=watch,
        meter=core.meter,
        home=home,
        keeper=core.keeper,
        journal=journal,
        has_deployment=has_deployment,
    )


async def _leave(keeper: LeaseKeeper) -> None:
    """On shutdown: give this replica's presence up, so the others take its timers at once."""
    name = presence_lease(keeper.replica)
    held = keeper.generation(name)
    if held is None:
        return
    try:
        async with asyncio.timeout(keeper.renew_s):
            await keeper.release(name, held)
    except (StoreError, TimeoutError):
        log.warning("could not give up the presence lease of replica %s", keeper.replica)


async def start(runtime: Runtime, core: Core) -> None:
    """Re-attach unfinished runs, arm every timer, finish interrupted requests, sweep once."""
    runtime.timers.on_fire(runtime.fire)
    await core.access.warn_of_unknown_groups(core.config.user_groups())
    await core.keeper.join()
    await runtime.runner.resume_all()
    await runtime.arm_timers()
    await runtime.watch.begin_missed()
    await runtime.dispatcher.recover_interrupted(
        runtime.has_deployment, replicas=[core.keeper.replica]
    )
    await runtime.home.start()
    await runtime.sweep()


def schedule(runtime: Runtime) -> AsyncIOScheduler:
    """Start the scheduler: the timers, the sweep every `sweep_interval_s`, and pruning every
    `prune_interval_s` (first at start-up)."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    runtime.timers.attach(scheduler)

    def every(
        name: str, seconds: float, job: Callable[[], Awaitable[None]], **first: datetime
    ) -> None:
        """Run `job` every `seconds`, never two at once, runs missed meanwhile folded into one;
        the first one interval from now, or at `next_run_time`."""
        scheduler.add_job(
            job, "interval", seconds=seconds, id=name, max_instances=1, coalesce=True, **first
        )

    every("sweep", runtime.settings.sweep_interval_s, runtime.sweep)
    every("leases", runtime.settings.lease_renew_s, runtime.tend)
    every("fence", min(FENCE_CHECK_S, runtime.settings.lease_renew_s), _enforce(runtime))
    every(
        "prune", runtime.settings.prune_interval_s, runtime.prune, next_run_time=datetime.now(UTC)
    )
    scheduler.start()
    return scheduler


def _enforce(runtime: Runtime) -> Callable[[], Awaitable[None]]:
    async def enforce() -> None:
        runtime.runner.enforce()

    return enforce
