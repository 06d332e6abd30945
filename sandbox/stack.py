"""The whole sandbox in one process: the real bot against a local Slack, AWS and services.

`open_sandbox` starts, in order: the demo services, a moto server seeded from the sandbox's
config, the canaries' traffic, the config itself (written to the sandbox directory once moto has
named the canaries' listeners and target groups), the local Slack with the people and channels,
the real bot (`bot.server.build_web_app`, on its own port of 127.0.0.1, with a fresh database in
the sandbox directory) and the page; it stops them in reverse order. This module and `cli` are
the only parts of `sandbox` that import the bot: the stand-ins play the outside world.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager, AsyncExitStack, asynccontextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, Protocol, runtime_checkable

from aiohttp import web

from bot.server import EVENTS_PATH, RUNTIME, build_web_app
from bot.settings import Settings
from pipeline.aws import BotoEcs
from pipeline.kernel.clock import SystemClock
from pipeline.kernel.config import Config, load_config
from pipeline.kernel.ports import Clock
from sandbox.aws import CanaryArns, Estate, LocalAws
from sandbox.config import CANARIES, EXAMPLE, Json, read_example, sandbox_config, to_toml
from sandbox.environment import child_environment, isolated, pg_bin, write_doctor_env
from sandbox.people import DEPLOYS, GROUPS, PEOPLE, REQUESTER, ROOMS, group_members, users
from sandbox.postgres import DEBIAN_PACKAGE, PostgresCluster, find_binaries
from sandbox.replicas import BalancedDelivery, Replicas, replica_names
from sandbox.services import DemoServices
from sandbox.slack import AppDelivery, LocalSlack
from sandbox.web import Page
from sandbox.web.messages import SLACKBOT

HOST: Final = "127.0.0.1"  # nothing of the sandbox listens beyond this machine
# manifest.yml's slash commands and bot scopes (tests/sandbox keeps them equal to the manifest).
SLASH_COMMANDS: Final = ("/deploy", "/rollback", "/incident", "/health")
BOT_SCOPES: Final = (
    "commands",
    "chat:write",
    "chat:write.public",
    "usergroups:read",
    "channels:manage",
    "pins:write",
    "channels:history",
    "groups:history",
    "channels:read",
    "users:read",
)
SHUTDOWN_GRACE_S: Final = 2.0
CONFIG_HEADER: Final = """\
The sandbox's config, made from chatops.example.toml each time the sandbox starts.
Health URLs point at the sandbox's demo services, approvers and responders are its people,
and waits are short so a deploy takes seconds. Editing it changes nothing: it is rewritten."""
WELCOME: Final = (
    "*Welcome to the chatops-bot sandbox.* Everything here runs on this machine: this Slack, "
    "AWS (a moto server) and the services the bot deploys. Type `/deploy production all` "
    "below, then approve as two people (switch who you are at the top left)."
)


@runtime_checkable
class SteppedClock(Clock, Protocol):
    """Virtual time that its owner moves (the tests' `AutojumpClock`). A sandbox on it runs its
    bot on it, and has the demo services' traffic and the bot's stored timers follow it
    instead of real seconds and APScheduler."""

    def follow(self, follower: Callable[[datetime], Awaitable[None]]) -> Callable[[], None]:
        """Call `follower` with the new time each time the clock moves; returns how to stop."""
        ...

    def flowing(self) -> AbstractContextManager[None]:
        """Let time pass while the owner waits for something (not while it acts)."""
        ...


@dataclass(frozen=True)
class Options:
    directory: Path = Path(".sandbox")
    port: int = 3000
    example: Path = EXAMPLE
    log_level: str = "WARNING"
    canary_bakes: tuple[str, ...] | None = None  # one per stage; None: the sandbox's own
    clock: SteppedClock | None = None  # None: the real clock (`make run`)
    # `--replicas N`: N > 1 runs N bot processes on a throwaway PostgreSQL, with short leases
    # (processes of their own, so on the real clock only).
    replicas: int = 1
    lease_ttl_s: float = 6.0
    lease_renew_s: float = 2.0


@dataclass(frozen=True)
class Sandbox:
    """What is running: the page's URL and each stand-in, for the CLI and the tests."""

    url: str
    bot_url: str
    slack: LocalSlack
    aws: LocalAws
    services: DemoServices
    estate: Estate
    config: Config
    config_path: Path
    db_path: Path
    clock: Clock
    replicas: Replicas | None = None  # with `--replicas N` (N > 1)
    database_url: str | None = None  # the replicas' PostgreSQL

    def waiting(self) -> AbstractContextManager[None]:
        """Enter while waiting for the sandbox to do something: on virtual time, time passes
        only then; real time passes anyway."""
        if isinstance(self.clock, SteppedClock):
            return self.clock.flowing()
        return nullcontext()


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((HOST, 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _seed_rooms(slack: LocalSlack) -> None:
    workspace = slack.workspace
    everyone = [workspace.bot_user, *(p.id for p in PEOPLE)]
    for room in ROOMS:
        channel = workspace.add_channel(room.id, room.name, creator=REQUESTER.id)
        channel.members[:] = everyone
        channel.topic = room.topic
    workspace.post(DEPLOYS.id, user=SLACKBOT, text=WELCOME)


@asynccontextmanager
async def open_sandbox(options: Options | None = None) -> AsyncIterator[Sandbox]:
    """Start everything; yield what runs; stop everything in reverse order, whatever happened."""
    options = options or Options()
    directory = options.directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("chatops.db*"):
        stale.unlink()
    example = read_example(options.example)
    async with AsyncExitStack() as stack:
        database = await _postgres_soon(stack, options)  # None without --replicas
        services = DemoServices(host=HOST)
        await services.start()
        stack.push_async_callback(services.close)

        aws, estate, region, canaries = await _start_aws(
            stack, services, example, directory, clock=options.clock
        )

        # The canaries' listener and target group ARNs are moto's (and the other services'
        # target groups): the config is written once they exist.
        raw = sandbox_config(
            example,
            health_base=services.base,
            canaries=canaries,
            bakes=options.canary_bakes,
            target_groups=services.target_groups,
        )
        config_path = directory / "chatops.toml"
        config_path.write_text(to_toml(raw, header=CONFIG_HEADER), encoding="utf-8")
        config = load_config(config_path)

        slack = LocalSlack(users=users(), groups=group_members(), scopes=BOT_SCOPES, host=HOST)
        await stack.enter_async_context(slack)
        _seed_rooms(slack)

        db_path = directory / "chatops.db"
        replicas: Replicas | None = None
        if options.replicas > 1:
            assert database is not None
            replicas, signing_secret = await _start_replicas(
                stack, database, slack=slack, config_path=config_path, options=options
            )
            bot_url = replicas.live()[0].url
        else:
            bot_url, signing_secret = await _start_bot(
                stack,
                slack=slack,
                config=config,
                config_path=config_path,
                db_path=db_path,
                options=options,
            )

        doctor_env = write_doctor_env(
            directory,
            endpoint=aws.endpoint,
            region=region,
            slack_api_url=slack.api_url,
            config_path=config_path,
            db_path=db_path,
            database_url=None if replicas is None else replicas.database_url,
        )
        stack.callback(doctor_env.unlink, missing_ok=True)
        delivery = (
            AppDelivery(slack, request_url=bot_url + EVENTS_PATH, signing_secret=signing_secret)
            if replicas is None
            else BalancedDelivery(slack, replicas, signing_secret=signing_secret)
        )
        stack.push_async_callback(delivery.close)
        page = Page(
            slack,
            delivery,
            services,
            people=PEOPLE,
            groups={g.id: g.handle for g in GROUPS},
            commands=SLASH_COMMANDS,
            home=DEPLOYS.id,
            host=HOST,
            port=options.port,
            replicas=replicas,
        )
        await page.start()
        stack.push_async_callback(page.close)
        yield Sandbox(
            url=page.url,
            bot_url=bot_url,
            slack=slack,
            aws=aws,
            services=services,
            estate=estate,
            config=config,
            config_path=config_path,
            db_path=db_path,
            clock=options.clock or SystemClock(),
            replicas=replicas,
            database_url=None if replicas is None else replicas.database_url,
        )


async def _start_aws(
    stack: AsyncExitStack,
    services: DemoServices,
    example: Json,
    directory: Path,
    *,
    clock: SteppedClock | None,
) -> tuple[LocalAws, Estate, str, list[CanaryArns]]:
    """Start the local AWS with the demo estate in it, point this process at it, and start
    the demo services' traffic (stopped before moto stops): every second, or each time
    `clock` moves."""
    raw = sandbox_config(example, health_base=services.base)
    estate = Estate.from_config(raw, canaries=CANARIES)
    aws = LocalAws(HOST)
    await asyncio.to_thread(aws.start)
    stack.push_async_callback(asyncio.to_thread, aws.close)
    region = estate.clusters[0].region
    stack.enter_context(isolated(aws.endpoint, region=region, nowhere=directory / "no-aws"))
    canaries = await asyncio.to_thread(aws.seed, estate)
    services.attach(aws, estate, canaries)
    if clock is None:
        await services.start_traffic()
        stack.push_async_callback(services.stop_traffic)
    else:
        await services.traffic_until(clock.now())
        stack.callback(clock.follow(services.traffic_until))
    return aws, estate, region, canaries


async def _start_bot(
    stack: AsyncExitStack,
    *,
    slack: LocalSlack,
    config: Config,
    config_path: Path,
    db_path: Path,
    options: Options,
) -> tuple[str, str]:
    """Serve the bot itself on a free port, talking to the local Slack; (its URL, its signing
    secret). `stack` stops it."""
    signing_secret = secrets.token_hex(16)
    bot_socket = _listening_socket()
    settings = Settings(
        _env_file=None,
        SLACK_BOT_TOKEN=f"xoxb-sandbox-{secrets.token_hex(8)}",
        SLACK_SIGNING_SECRET=signing_secret,
        SLACK_APP_TOKEN=None,
        SLACK_API_URL=slack.api_url,
        CHATOPS_CONFIG=str(config_path),
        CHATOPS_DB=str(db_path),
        CHATOPS_HOST=HOST,
        PORT=bot_socket.getsockname()[1],
        CHATOPS_SHUTDOWN_GRACE_S=SHUTDOWN_GRACE_S,
        CHATOPS_LOG_LEVEL=options.log_level,
    )
    clock = options.clock
    bot_app = build_web_app(
        settings,
        config,
        clock=clock or SystemClock(),
        ecs=BotoEcs(),
        start_scheduler=clock is None,
    )
    runner = web.AppRunner(bot_app, access_log=None, handle_signals=False)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    if clock is not None:
        # On virtual time the bot's stored timers (approval expiry, reminders, the watch's
        # checks) fire when the clock reaches them, not when APScheduler's real time does.
        timers = bot_app[RUNTIME].timers

        async def fire_due(_: datetime) -> None:
            await timers.run_due()

        stack.callback(clock.follow(fire_due))
    await web.SockSite(runner, bot_socket).start()
    return f"http://{HOST}:{settings.port}", signing_secret


class PostgresMissing(Exception):
    """`--replicas N` needs PostgreSQL's binaries, and none were found."""

    def __init__(self) -> None:
        super().__init__(
            "--replicas needs PostgreSQL: no initdb and postgres under /usr/lib/postgresql/*/bin, "
            f"on PATH or in $PG_BIN. On Debian or Ubuntu: apt-get install {DEBIAN_PACKAGE}"
        )


async def _postgres_soon(
    stack: AsyncExitStack, options: Options
) -> asyncio.Task[PostgresCluster] | None:
    """With `--replicas N` (N > 1), a throwaway PostgreSQL cluster starting (initdb, about 2 s)
    while the rest of the sandbox starts; `stack` stops it last. None for one bot."""
    if options.replicas <= 1:
        return None
    if options.clock is not None:
        raise ValueError("--replicas runs bot processes of their own, on the real clock only")
    binaries = find_binaries(pg_bin())
    if binaries is None:
        raise PostgresMissing
    starting = asyncio.create_task(
        asyncio.to_thread(PostgresCluster.start, binaries, password=secrets.token_hex(8))
    )

    async def stop() -> None:
        try:
            cluster = await starting  # a start under way is let finish, then stopped
        except Exception:  # noqa: BLE001 - it did not start; whoever awaited it was told
            return
        await asyncio.to_thread(cluster.stop)

    stack.push_async_callback(stop)
    return starting


async def _start_replicas(
    stack: AsyncExitStack,
    database: asyncio.Task[PostgresCluster],
    *,
    slack: LocalSlack,
    config_path: Path,
    options: Options,
) -> tuple[Replicas, str]:
    """`options.replicas` `chatops-bot serve` processes on one database of the cluster, each on
    its own port; (the replicas, their signing secret). `stack` stops them."""
    directory = options.directory.resolve()
    cluster = await database
    database_url = await asyncio.to_thread(cluster.database, "chatops")
    signing_secret = secrets.token_hex(16)
    env = child_environment(
        {
            "SLACK_BOT_TOKEN": f"xoxb-sandbox-{secrets.token_hex(8)}",
            "SLACK_SIGNING_SECRET": signing_secret,
            "SLACK_API_URL": slack.api_url,
            "CHATOPS_CONFIG": str(config_path),
            "CHATOPS_DATABASE_URL": database_url,
            "CHATOPS_HOST": HOST,
            "CHATOPS_SHUTDOWN_GRACE_S": str(SHUTDOWN_GRACE_S),
            "CHATOPS_LOG_LEVEL": options.log_level,
            "CHATOPS_LEASE_TTL_S": str(options.lease_ttl_s),
            "CHATOPS_LEASE_RENEW_S": str(options.lease_renew_s),
        }
    )
    replicas = Replicas(
        replica_names(options.replicas),
        env=env,
        directory=directory,
        database_url=database_url,
        events_path=EVENTS_PATH,
    )
    stack.push_async_callback(replicas.close)
    await replicas.start_all()
    return replicas, signing_secret
