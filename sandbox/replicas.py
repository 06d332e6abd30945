"""`chatops-bot sandbox --replicas N`: N replicas of the real bot on one PostgreSQL database.

Each replica is a `chatops-bot serve` process of its own (`replica-1`, `replica-2`, ...) on its
own port of 127.0.0.1, with its own `CHATOPS_REPLICA_ID` and short leases, so a takeover shows
within seconds. `Replicas.kill` stops one with SIGKILL, as a lost host would: it gives nothing
up, so the others take its runs over once its leases lapse. `Replicas.start` brings it back
(under its id, it takes back at once the leases still held under that id).

`BalancedDelivery` is the local Slack's side: it spreads the slash commands and clicks over the
live replicas in turn, skipping a dead one, as a load balancer would. `Replicas.leases` reads
who owns each run from the database, for the page.

This module plays the operator and the load balancer: it imports none of the bot's packages.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import aiohttp
import psycopg

from sandbox.slack import Ack, AppDelivery, LocalSlack

HOST: Final = "127.0.0.1"
READY_TIMEOUT_S: Final = 60.0
STOP_TIMEOUT_S: Final = 10.0
RUNS_SHOWN: Final = 8
# `chatops-bot serve`, as the console script runs it.
SERVE: Final = "from bot.main import main; raise SystemExit(main(['serve']))"


class NoLiveReplica(Exception):
    """Every replica is killed: nothing can take a request."""


def replica_names(count: int) -> list[str]:
    return [f"replica-{n}" for n in range(1, count + 1)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Replica:
    """One `chatops-bot serve` process; `state` is `starting`, `live` or `killed` (`shown`
    adds `exited`: live, but its process ended on its own)."""

    name: str
    log: Path
    port: int = 0
    process: asyncio.subprocess.Process | None = None
    state: str = "killed"
    killed_at: datetime | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def shown(self) -> str:
        return "exited" if self.state == "live" and not self.running else self.state


@dataclass
class Replicas:
    """The replicas' processes. `env` is every replica's environment but its id and port."""

    names: Sequence[str]
    env: Mapping[str, str]
    directory: Path
    database_url: str
    events_path: str
    on_change: Callable[[], None] = lambda: None
    replicas: dict[str, Replica] = field(default_factory=dict)
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        for name in self.names:
            self.replicas[name] = Replica(name, log=self.directory / f"{name}.log")
            self.replicas[name].log.unlink(missing_ok=True)  # each sandbox starts afresh

    def get(self, name: str) -> Replica:
        try:
            return self.replicas[name]
        except KeyError:
            raise KeyError(f"no replica {name!r}: {', '.join(self.replicas)}") from None

    async def start_all(self) -> None:
        await asyncio.gather(*(self.start(name) for name in self.replicas))

    async def start(self, name: str) -> None:
        """Start replica `name` (if it is not running) and wait until it answers /healthz."""
        replica = self.get(name)
        if replica.running:
            return
        replica.port = replica.port or _free_port()  # a restart keeps its address
        replica.state = "starting"
        self.on_change()
        env = {**self.env, "CHATOPS_REPLICA_ID": name, "PORT": str(replica.port)}
        with replica.log.open("ab") as out:
            replica.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                SERVE,
                cwd=self.directory,  # not the checkout: its .env is not read
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
        try:
            await self._wait_ready(replica)
        except BaseException:
            await self.kill(name)
            raise
        replica.state, replica.killed_at = "live", None
        self.on_change()

    async def _wait_ready(self, replica: Replica) -> None:
        async with aiohttp.ClientSession() as http, asyncio.timeout(READY_TIMEOUT_S):
            while True:
                if not replica.running:
                    tail = replica.log.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"{replica.name} exited at start:\n{tail}")
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with http.get(f"{replica.url}/healthz") as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.05)

    async def kill(self, name: str) -> None:
        """SIGKILL: the replica stops at once and gives up nothing (no lease is released)."""
        replica = self.get(name)
        if replica.process is not None and replica.process.returncode is None:
            replica.process.send_signal(signal.SIGKILL)
            await replica.process.wait()
        replica.state, replica.killed_at = "killed", datetime.now(UTC)
        self.on_change()

    async def close(self) -> None:
        """Stop every replica gracefully (SIGTERM), killing any that does not stop in time."""
        running = [r for r in self.replicas.values() if r.running]
        for replica in running:
            assert replica.process is not None
            replica.process.send_signal(signal.SIGTERM)
        for replica in running:
            assert replica.process is not None
            try:
                await asyncio.wait_for(replica.process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                await self.kill(replica.name)
            replica.state = "killed"

    def live(self) -> list[Replica]:
        return [r for r in self.replicas.values() if r.state == "live" and r.running]

    def next_url(self) -> str:
        """The events URL of the next live replica, in turn (round robin over the live ones)."""
        live = self.live()
        if not live:
            raise NoLiveReplica("every replica is killed: start one on the page")
        return live[next(self._turn) % len(live)].url + self.events_path

    async def leases(self) -> dict[str, Any]:
        """What the page shows: each replica (state, presence lease) and the newest runs with
        their owner, read from the `leases` table."""
        now = datetime.now(UTC)
        try:
            async with await psycopg.AsyncConnection.connect(
                self.database_url, autocommit=True, connect_timeout=2
            ) as db:
                presence = await (
                    await db.execute("SELECT name, owner, expires_at FROM leases")
                ).fetchall()
                runs = await (
                    await db.execute(
                        "SELECT d.id, d.environment, d.state, l.owner, l.generation, "
                        "l.expires_at, (SELECT string_agg(t.service, ', ' ORDER BY t.position) "
                        "FROM deployment_targets t WHERE t.deployment_id = d.id) "
                        "FROM deployments d LEFT JOIN leases l ON l.name = 'run:' || d.id "
                        "ORDER BY d.created_at DESC, d.id DESC LIMIT %s",
                        (RUNS_SHOWN,),
                    )
                ).fetchall()
        except psycopg.Error:  # not migrated yet, or the cluster stopping
            presence, runs = [], []
        held = {str(name): _seconds_left(expires, now) for name, _, expires in presence}
        return {
            "replicas": [
                {
                    "name": r.name,
                    "state": r.shown,
                    "url": r.url if r.port else None,
                    "presence_s": held.get(f"replica:{r.name}"),
                }
                for r in self.replicas.values()
            ],
            "runs": [
                {
                    "id": run_id,
                    "environment": environment,
                    "services": services or "",
                    "state": state,
                    "owner": owner,
                    "generation": generation,
                    "lease_s": None if expires is None else _seconds_left(expires, now),
                }
                for run_id, environment, state, owner, generation, expires, services in runs
            ],
        }


def _seconds_left(expires: Any, now: datetime) -> float | None:
    """Seconds until `expires` (negative: lapsed that long ago), from the stored timestamp."""
    try:
        at = datetime.fromisoformat(str(expires))
    except ValueError:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return round((at - now).total_seconds(), 1)


class BalancedDelivery(AppDelivery):
    """The local Slack's deliveries, spread over the live replicas in turn."""

    def __init__(self, slack: LocalSlack, replicas: Replicas, *, signing_secret: str) -> None:
        super().__init__(slack, request_url="", signing_secret=signing_secret)
        self.replicas = replicas

    def target(self) -> str:
        return self.replicas.next_url()

    async def post(self, body: str | bytes, *, content_type: str, headers: dict[str, str]) -> Ack:
        if not self.replicas.live():  # what a load balancer with no healthy target answers
            return Ack(503, "no live replica")
        return await super().post(body, content_type=content_type, headers=headers)
