"""How each feature is built from what all of them share; `bot/runtime.py` composes them.

`wire_core` builds the shared part once (repositories, Slack, the engine, the runner, `Runs`);
each `wire_<feature>` takes that `Core` and returns the feature's handlers. Adding a feature
adds one function here and one line in `open_runtime`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bot.deploy.adapter import SlackNotifier
from bot.home import HomeTabs
from bot.incident.adapter import SlackIncidentChat
from bot.metrics import Meter, TimedDeployments
from bot.settings import Settings
from bot.slack import SlackGateway
from bot.timers import Timers
from bot.watch.adapter import SlackWatchChat
from commands.access import Access
from commands.canary.usecases import CanaryCommands
from commands.deploy.planning import DeployPlanner
from commands.deploy.stats import DeliveryFigures
from commands.deploy.usecases import DeployCommands
from commands.gates.usecases import GateCommands
from commands.health.usecases import HealthCommands
from commands.home import HomeReader
from commands.incident.reminders import Reminders
from commands.incident.usecases import IncidentCommands
from commands.rollback.approvers import WarRoomApprovers
from commands.rollback.buttons import RollbackButtons
from commands.rollback.usecases import RollbackCommands
from commands.rollback.window import RollbackWindows
from commands.runs.lifecycle import Runs
from commands.watch import PostDeployWatch
from pipeline.aws.cloudwatch import BotoMetrics, BotoServiceMetrics
from pipeline.aws.elbv2 import BotoLoadBalancer
from pipeline.aws.gates import BotoRecordStore, BotoRegistry, BotoSnapshots, BotoTasks
from pipeline.deploy import DeployEngine
from pipeline.fleet import Fleet
from pipeline.freezes import Freezes
from pipeline.health import HealthChecker
from pipeline.kernel.config import Config
from pipeline.kernel.infra import RecordStore, Registry, Snapshots, Tasks
from pipeline.kernel.ports import Clock, Ecs
from pipeline.kernel.traffic import LoadBalancer, Metrics, ServiceMetrics
from pipeline.leases import Firings, LeaseKeeper
from pipeline.preflight import Preflight
from pipeline.runner import Runner
from pipeline.tasks import OwnedTasks
from store.claims import TimerClaims
from store.db import Store
from store.delivery import Delivery
from store.deploy.cards import CardViews
from store.deploy.locks import Locks
from store.deploy.models import Deployment
from store.deploy.repository import Deployments
from store.deploy.stages import RolloutStages
from store.home import HomeViewers
from store.incident.repository import Incidents
from store.leases import Leases, run_lease, stamp
from store.watch import Watches


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


@dataclass(frozen=True)
class Outside:
    """The outside world the runtime is given: AWS ports (moto or fakes in tests) and HTTP."""

    ecs: Ecs
    load_balancer: LoadBalancer
    metrics: Metrics
    gates: GateAdapters
    session: aiohttp.ClientSession
    service_metrics: ServiceMetrics = field(default_factory=BotoServiceMetrics)


@dataclass(frozen=True)
class Core:
    """What every feature is built from."""

    config: Config
    clock: Clock
    store: Store
    slack: SlackGateway
    notifier: SlackNotifier
    timers: Timers
    access: Access
    deployments: Deployments
    stages: RolloutStages
    incidents: Incidents
    locks: Locks
    preflight: Preflight
    fleet: Fleet
    engine: DeployEngine
    runner: Runner
    runs: Runs
    session: aiohttp.ClientSession
    background: OwnedTasks
    watches: Watches
    service_metrics: ServiceMetrics
    meter: Meter
    keeper: LeaseKeeper
    firings: Firings

    def health_checker(self) -> HealthChecker:
        return HealthChecker(self.session, self.clock)


def wire_core(
    settings: Settings,
    config: Config,
    *,
    clock: Clock,
    store: Store,
    client: AsyncWebClient,
    outside: Outside,
    background: OwnedTasks,
    meter: Meter,
) -> Core:
    """The repositories, the Slack adapters, the engine, its runner and `Runs`."""
    deployments = TimedDeployments(store, meter=meter)
    slack = SlackGateway(client)
    cards = CardViews(store)
    watches = Watches(store)
    notifier = SlackNotifier(
        slack,
        config,
        deployments=deployments,
        cards=cards,
        clock=clock,
        tasks=background,
        watches=watches,
    )
    keeper = LeaseKeeper(
        Leases(store),
        replica=settings.replica,
        clock=clock,
        ttl_s=settings.lease_ttl_s,
        renew_s=settings.lease_renew_s,
    )
    firings = Firings(TimerClaims(store), replica=settings.replica, clock=clock)
    timers = Timers(clock, firings=firings)
    locks = Locks(store)
    incidents = Incidents(store)
    preflight = Preflight(
        config=config,
        locks=locks,
        registry=outside.gates.registry,
        health=HealthChecker(outside.session, clock),
        freezes=Freezes(config=config, incidents=incidents, rooms=SlackIncidentChat(slack, config)),
    )
    fleet = Fleet(ecs=outside.ecs, load_balancer=outside.load_balancer)
    stages = RolloutStages(store)
    engine, runner = wire_engine(
        settings,
        config,
        outside,
        deployments=deployments,
        stages=stages,
        fleet=fleet,
        notifier=notifier,
        timers=timers,
        clock=clock,
        preflight=preflight,
        keeper=keeper,
    )

    async def may_draw(run: Deployment) -> bool:
        """A run's card is drawn by its owner; by anyone while no live replica owns it."""
        if runner.owns(run.id) or not run.state.in_flight:
            return True
        name = run_lease(run.id)
        holder = (await keeper.leases.holders([name])).get(name)
        return holder is None or holder.expires_at < stamp(clock.now())

    notifier.speak_for(owns=runner.owns, may_draw=may_draw, firings=firings)
    runner.on_followed(notifier.redraw)
    runs = Runs(
        deployments=deployments, runner=runner, notifier=notifier, timers=timers, clock=clock
    )
    return Core(
        config=config,
        clock=clock,
        store=store,
        slack=slack,
        notifier=notifier,
        timers=timers,
        access=Access(slack),
        deployments=deployments,
        stages=stages,
        incidents=incidents,
        locks=locks,
        preflight=preflight,
        fleet=fleet,
        engine=engine,
        runner=runner,
        runs=runs,
        session=outside.session,
        background=background,
        watches=watches,
        service_metrics=outside.service_metrics,
        meter=meter,
        keeper=keeper,
        firings=firings,
    )


def wire_engine(
    settings: Settings,
    config: Config,
    outside: Outside,
    *,
    deployments: Deployments,
    stages: RolloutStages,
    fleet: Fleet,
    notifier: SlackNotifier,
    timers: Timers,
    clock: Clock,
    preflight: Preflight,
    keeper: LeaseKeeper | None = None,
) -> tuple[DeployEngine, Runner]:
    """The engine that runs, stops and resumes runs, on the outside world's AWS ports, and the
    runner that owns its tasks."""
    engine = DeployEngine(
        config=config,
        deployments=deployments,
        stages=stages,
        ecs=outside.ecs,
        fleet=fleet,
        health=HealthChecker(outside.session, clock),
        notifier=notifier,
        timers=timers,
        clock=clock,
        load_balancer=outside.load_balancer,
        metrics=outside.metrics,
        preflight=preflight,
        snapshots=outside.gates.snapshots,
        tasks=outside.gates.tasks,
        records=outside.gates.records,
    )
    runner = Runner(
        engine=engine,
        deployments=deployments,
        clock=clock,
        shutdown_grace_s=settings.shutdown_grace_s,
        keeper=keeper,
    )
    return engine, runner


def on_aws(
    session: aiohttp.ClientSession,
    *,
    ecs: Ecs,
    load_balancer: LoadBalancer | None,
    metrics: Metrics | None,
    gates: GateAdapters | None,
) -> Outside:
    """The outside world: what the caller gave, and AWS (boto3) for the rest."""
    return Outside(
        ecs=ecs,
        load_balancer=load_balancer or BotoLoadBalancer(),
        metrics=metrics or BotoMetrics(),
        gates=gates or GateAdapters.on_aws(),
        session=session,
    )


def wire_deploy(core: Core) -> DeployCommands:
    """`/deploy`: plans, approvals, status, history and delivery figures."""
    planner = DeployPlanner(
        config=core.config,
        deployments=core.deployments,
        fleet=core.fleet,
        access=core.access,
        clock=core.clock,
        preflight=core.preflight,
    )
    return DeployCommands(
        config=core.config,
        deployments=core.deployments,
        planner=planner,
        runs=core.runs,
        runner=core.runner,
        access=core.access,
        notifier=core.notifier,
        clock=core.clock,
        figures=DeliveryFigures(
            config=core.config, delivery=Delivery(core.store), clock=core.clock
        ),
    )


def wire_gates(core: Core) -> GateCommands:
    """Locks, the wait's Cancel, `/deploy status <environment>`, restore-db."""
    return GateCommands(
        config=core.config,
        deployments=core.deployments,
        locks=core.locks,
        runs=core.runs,
        runner=core.runner,
        access=core.access,
        timers=core.timers,
        clock=core.clock,
    )


@dataclass(frozen=True)
class IncidentFeature:
    commands: IncidentCommands
    reminders: Reminders


def wire_incident(core: Core) -> IncidentFeature:
    """`/incident`, its forms and its reminders."""
    chat = SlackIncidentChat(core.slack, core.config)
    reminders = Reminders(
        config=core.config,
        incidents=core.incidents,
        chat=chat,
        timers=core.timers,
        clock=core.clock,
        on_fired=core.meter.reminder_fired,
        firings=core.firings,
    )
    commands = IncidentCommands(
        config=core.config,
        incidents=core.incidents,
        deployments=core.deployments,
        chat=chat,
        access=core.access,
        reminders=reminders,
        clock=core.clock,
    )
    return IncidentFeature(commands, reminders)


@dataclass(frozen=True)
class RollbackFeature:
    commands: RollbackCommands
    buttons: RollbackButtons
    windows: RollbackWindows


def wire_rollback(core: Core) -> RollbackFeature:
    """`/rollback`, the Roll back buttons (cards, war rooms) and the rollback windows."""
    commands = RollbackCommands(
        config=core.config,
        deployments=core.deployments,
        runs=core.runs,
        fleet=core.fleet,
        runner=core.runner,
        access=core.access,
        clock=core.clock,
        approvers=WarRoomApprovers(
            config=core.config,
            incidents=core.incidents,
            chat=SlackIncidentChat(core.slack, core.config),
            access=core.access,
        ),
    )
    buttons = RollbackButtons(
        config=core.config,
        deployments=core.deployments,
        incidents=core.incidents,
        runs=core.runs,
        fleet=core.fleet,
        rollback=commands,
        clock=core.clock,
        links=core.notifier,
    )
    windows = RollbackWindows(
        deployments=core.deployments,
        runs=core.runs,
        engine=core.engine,
        timers=core.timers,
        clock=core.clock,
    )
    return RollbackFeature(commands, buttons, windows)


def wire_canary(core: Core) -> CanaryCommands:
    """A canary's Promote, Hold/Resume and Abort."""
    return CanaryCommands(
        config=core.config,
        deployments=core.deployments,
        stages=core.stages,
        runs=core.runs,
        runner=core.runner,
        access=core.access,
        clock=core.clock,
    )


def wire_health(core: Core) -> HealthCommands:
    """`/health`."""
    return HealthCommands(config=core.config, fleet=core.fleet, health=core.health_checker())


def wire_watch(core: Core, rollback: RollbackFeature) -> PostDeployWatch:
    """The watch after each successful deploy or rollback (docs/watch.md): started by the
    engine when a run succeeds, checked on its timers."""
    watch = PostDeployWatch(
        config=core.config,
        deployments=core.deployments,
        watches=core.watches,
        metrics=core.service_metrics,
        chat=SlackWatchChat(core.config, core.notifier, core.slack),
        timers=core.timers,
        clock=core.clock,
        roll_back=rollback.buttons.automatic,
        firings=core.firings,
    )

    async def begin(run: Deployment) -> None:
        await watch.begin(run)

    core.engine.after_success(begin)
    return watch


def wire_home(core: Core) -> HomeTabs:
    """The App Home tab: published to whoever opened it, again whenever a run changes (each
    redraw of a card); the dispatcher and the timers tell it of the other changes."""
    home = HomeTabs(
        reader=HomeReader(core.config, core.store, access=core.access, clock=core.clock),
        viewers=HomeViewers(core.store),
        slack=core.slack,
        clock=core.clock,
        tasks=core.background,
    )
    core.notifier.on_change(home.changed)
    return home
