"""The crash matrix: the real `chatops-bot serve` is killed with SIGKILL at each step of a staging
deploy and of its automatic rollback, then started again.

Around the process: a moto server behind a fault-injecting proxy (`AWS_ENDPOINT_URL`), the
local Slack, and a local health server, all on 127.0.0.1. Each step is reached by making one of
them stop answering (a held ECS call, a Slack post that hangs, a health check that hangs); the
process is killed there, the fault is lifted, and a new process is started on the same
database. Every case must end in a final state that ECS agrees with and the card shows, with
no second task-definition revision, one card, and the request in the audit log.

`pytest -s tests/test_crash_matrix.py` prints the results as a table.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import boto3
import pytest

from bot.deploy.adapter import CARD_EVENT
from tests.driver import sign
from tests.fakes.aws_proxy import EcsProxy
from tests.fakes.canary_world import CanaryWorld
from tests.fakes.ecs import revisions
from tests.fakes.ecs_world import REGION, REPO, EcsWorld
from tests.fakes.gates_world import push_images
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack

pytestmark = pytest.mark.slow

SECRET = "crash-matrix-signing-secret"
TOKEN = "xoxb-crash-matrix-token"
CHANNEL = "CDEPLOYS"
SERVICE = "api-gateway"
COMMAND = f"staging {SERVICE} v1.4.0"
STEP_BACKSTOP_S = 15.0
FINAL_BACKSTOP_S = 30.0
# Longer than any case: a Slack post held this long never gets through while the case runs.
NEVER_S = 600.0

RESULTS: list[tuple[str, str, str]] = []


@dataclass
class Rig:
    """Everything around the bot process in one case."""

    slack: FakeSlack
    proxy: EcsProxy
    health: FakeHealth
    world: EcsWorld


@dataclass(frozen=True)
class Case:
    """Kill the bot where `arm` stops it (an awaitable that returns once it is there); `lift`
    undoes the fault before the restart."""

    step: str
    failing: bool
    arm: Callable[[Rig], Callable[[], Awaitable[None]]]
    lift: Callable[[Rig], None] = lambda rig: None
    recorded: bool = True

    @property
    def scenario(self) -> str:
        return "rollback" if self.failing else "deploy"


def _held(rig: Rig, action: str, **how: Any) -> Callable[[], Awaitable[None]]:
    hold = rig.proxy.hold(action, **how)

    async def reached() -> None:
        await hold.reached.wait()

    return reached


def _health_paused(rig: Rig, when: Callable[[], bool]) -> Callable[[], Awaitable[None]]:
    rig.health.pause_when = lambda service, path: when()

    async def reached() -> None:
        await rig.health.paused.wait()

    return reached


def _card_hangs(rig: Rig) -> Callable[[], Awaitable[None]]:
    """Slack takes the card and never answers."""
    rig.slack.accept_then_fail("chat.postMessage", hang=True)

    async def reached() -> None:
        while not rig.slack.workspace.channel(CHANNEL).messages:  # noqa: ASYNC110 - polls Slack's state
            await asyncio.sleep(0.01)

    return reached


def _card_stalls(rig: Rig) -> Callable[[], Awaitable[None]]:
    """The card post never gets through to the channel."""
    rig.slack.delay("chat.postMessage", NEVER_S)

    async def reached() -> None:
        while not rig.slack.of("chat.postMessage"):  # noqa: ASYNC110 - polls Slack's calls
            await asyncio.sleep(0.01)

    return reached


def _updates(rig: Rig) -> int:
    return rig.proxy.count("UpdateService")


CASES = [
    Case(
        "after the ack (planning: DescribeServices held)",
        False,
        lambda rig: _held(rig, "DescribeServices"),
        recorded=False,
    ),
    Case("card posted, Slack's answer lost", False, _card_hangs),
    Case(
        "card post not yet through",
        False,
        _card_stalls,
        lift=lambda rig: rig.slack.delay("chat.postMessage", 0),
    ),
    Case(
        "RegisterTaskDefinition taken, answer lost",
        False,
        lambda rig: _held(rig, "RegisterTaskDefinition", after_effect=True),
    ),
    Case(
        "UpdateService taken, answer lost",
        False,
        lambda rig: _held(rig, "UpdateService", after_effect=True),
    ),
    Case(
        "ECS wait (DescribeServices after UpdateService)",
        False,
        lambda rig: _held(rig, "DescribeServices", once=("UpdateService", 1)),
    ),
    Case(
        "health checks",
        False,
        lambda rig: _health_paused(rig, lambda: True),
        lift=lambda rig: rig.health.resume(),
    ),
    Case(
        "failing health checks",
        True,
        lambda rig: _health_paused(rig, lambda: _updates(rig) == 1),
        lift=lambda rig: rig.health.resume(),
    ),
    Case(
        "rollback: UpdateService back taken, answer lost",
        True,
        lambda rig: _held(rig, "UpdateService", after_effect=True, once=("UpdateService", 1)),
    ),
    Case(
        "rollback: ECS wait",
        True,
        lambda rig: _held(rig, "DescribeServices", once=("UpdateService", 2)),
    ),
    Case(
        "rollback: health checks",
        True,
        lambda rig: _health_paused(rig, lambda: _updates(rig) >= 2),
        lift=lambda rig: rig.health.resume(),
    ),
]


@pytest.fixture(scope="module", autouse=True)
def _table() -> Iterator[None]:
    yield
    if RESULTS:
        print("\n| scenario | killed during | after the restart |")
        print("| --- | --- | --- |")
        for scenario, step, outcome in RESULTS:
            print(f"| {scenario} | {step} | {outcome} |")


class BotProcess:
    """`chatops-bot serve` in a child process, on a free port of 127.0.0.1."""

    def __init__(self, env: dict[str, str], cwd: Path, log: Path) -> None:
        self._env = env
        self._cwd = cwd
        self._log = log
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0

    async def start(self, *, healthy: bool = True) -> None:
        """Start the process; with `healthy`, wait until it answers /healthz (its start-up
        work, the first sweep included, is done)."""
        self.port = _free_port()
        env = {**self._env, "PORT": str(self.port)}
        with self._log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                "from bot.main import main; raise SystemExit(main(['serve']))",
                cwd=self._cwd,
                env=env,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
        if healthy:
            await self._wait_healthy()

    async def _wait_healthy(self) -> None:
        async with aiohttp.ClientSession() as http:
            for _ in range(400):
                assert self.proc is not None
                if self.proc.returncode is not None:
                    raise AssertionError(f"the bot exited: {self._log.read_text()}")
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with http.get(f"http://127.0.0.1:{self.port}/healthz") as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.025)
        raise AssertionError("the bot never answered /healthz")

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                await self.kill()

    async def deploy(self, slack: FakeSlack, text: str) -> int:
        return await self.command(slack, "/deploy", text)

    async def command(self, slack: FakeSlack, command: str, text: str) -> int:
        body = urlencode(
            {
                "command": command,
                "text": text,
                "user_id": "UDEV",
                "user_name": "dev",
                "channel_id": CHANNEL,
                "team_id": "T1",
                "api_app_id": "A1",
                "response_url": slack.response_url(f"{command[1:]}-UDEV"),
                "trigger_id": f"T-crash-{command[1:]}",
            }
        )
        headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body, secret=SECRET)}
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"http://127.0.0.1:{self.port}/slack/events", data=body.encode(), headers=headers
            ) as resp,
        ):
            return resp.status


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(path: Path, health: FakeHealth) -> None:
    path.write_text(
        f"""
[environments.staging]
cluster = "skillancer-staging"
region = "{REGION}"

[environments.staging.health]
retries = 2
interval = "50ms"
timeout = "2s"

[environments.staging.rollout]
stable_timeout = "30s"
poll_interval = "50ms"

[services.{SERVICE}]
image = "{REPO}/{SERVICE}"
health_url = {{ staging = "{health.url(SERVICE)}" }}
""",
        encoding="utf-8",
    )


@pytest.fixture
def rig(slack: FakeSlack, ecs_proxy: EcsProxy, health: FakeHealth, moto_server: str) -> Rig:
    world = EcsWorld(endpoint_url=moto_server)
    world.add_service("staging", SERVICE, "v1.3.0")
    # The pre-flight check looks for the image in ECR before the card is posted.
    ecr = boto3.client("ecr", region_name=REGION, endpoint_url=moto_server)
    push_images(ecr, REPO.split("/", 1)[1] + "/" + SERVICE, "v1.3.0", "v1.4.0")
    return Rig(slack, ecs_proxy, health, world)


class Db:
    """The bot's database, read the way an operator would (read-only, beside the live bot)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def run(self) -> tuple[str, str, str | None, str | None] | None:
        rows = self.query(
            "SELECT d.id, d.state, d.message_ts, t.new_task_def FROM deployments d "
            "JOIN deployment_targets t ON t.deployment_id = d.id"
        )
        assert len(rows) <= 1
        return rows[0] if rows else None


FINAL = {
    "succeeded": "✅ Staging deployment successful",
    "rolled_back": "Automatic rollback completed",
}


async def _until(check: Callable[[], bool], what: str, backstop_s: float) -> None:
    deadline = time.monotonic() + backstop_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never saw {what}")
        await asyncio.sleep(0.05)


def _bot_env(rig: Rig, config: Path, db: Db) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],  # noqa: TID251 - the child needs a PATH
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": rig.slack.api_url,
        "CHATOPS_CONFIG": str(config),
        "CHATOPS_DB": str(db.path),
        "CHATOPS_HOST": "127.0.0.1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": rig.proxy.url,
    }


def _card_text(slack: FakeSlack, ts: str | None) -> str:
    if ts is None:
        return ""
    return str(slack.workspace.message(CHANNEL, ts).blocks)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.scenario}: {c.step}" for c in CASES])
async def test_a_bot_killed_mid_step_ends_consistent_with_ecs_and_its_card(
    case: Case, rig: Rig, tmp_path: Path, moto_server: str
) -> None:
    original = rig.world.task_definition("staging", SERVICE)
    if case.failing:
        world = rig.world
        rig.health.status_for = lambda service, path: (
            503 if world.version("staging", service) == "v1.4.0" else 200
        )
    config = tmp_path / "chatops.toml"
    _config(config, rig.health)
    log = tmp_path / "bot.log"
    db = Db(tmp_path / "bot.db")
    env = _bot_env(rig, config, db)
    bot = BotProcess(env, tmp_path, log)
    reached = case.arm(rig)
    await bot.start()
    try:
        assert await bot.deploy(rig.slack, COMMAND) == 200
        await asyncio.wait_for(reached(), STEP_BACKSTOP_S)
        await bot.kill()
        case.lift(rig)
        await bot.start()

        if case.recorded:
            await _until(
                lambda: (
                    (run := db.run()) is not None
                    and run[1] in FINAL
                    and FINAL[run[1]] in _card_text(rig.slack, run[2])
                ),
                "a final state on the card",
                FINAL_BACKSTOP_S,
            )
        else:
            await _until(
                lambda: bool(rig.slack.of("chat.postEphemeral")),
                "the requester told",
                FINAL_BACKSTOP_S,
            )
    finally:
        await bot.stop()

    run = db.run()
    revs = revisions(rig.world, "staging", SERVICE)
    running = rig.world.task_definition("staging", SERVICE)
    cards = [
        m
        for m in rig.slack.workspace.channel(CHANNEL).messages
        if m.thread_ts is None and (m.metadata or {}).get("event_type") == CARD_EVENT
    ]
    audited = db.query("SELECT outcome FROM audit_log WHERE action LIKE '/deploy %'")
    open_left = db.query("SELECT COUNT(*) FROM open_requests")[0][0]
    output = log.read_text(encoding="utf-8")
    assert TOKEN not in output
    assert SECRET not in output
    assert len(audited) == 1
    assert open_left == 0
    if not case.recorded:
        assert run is None
        assert revs == [original]
        assert running == original
        assert cards == []
        assert "nothing was recorded or changed" in rig.slack.of("chat.postEphemeral")[0]["text"]
        RESULTS.append(
            (case.scenario, case.step, "nothing recorded; ECS untouched; requester told to resend")
        )
        return
    assert run is not None
    _, state, card_ts, new_td = run
    assert len(cards) == 1
    assert cards[0].ts == card_ts
    assert len(revs) == 2
    assert new_td in revs
    assert rig.proxy.count("RegisterTaskDefinition") == 1
    if case.failing:
        assert state == "rolled_back"
        assert running == original
        assert rig.world.version("staging", SERVICE) == "v1.3.0"
        assert "🚨 Staging deployment FAILED" in _card_text(rig.slack, card_ts)
    else:
        assert state == "succeeded"
        assert running == new_td
        assert rig.world.version("staging", SERVICE) == "v1.4.0"
    RESULTS.append(
        (
            case.scenario,
            case.step,
            f"{state}; ECS on {running.rsplit('/', 1)[-1]} "
            f"({rig.world.version('staging', SERVICE)}); {len(revs)} revisions; 1 card shows "
            f"it; audit: {audited[0][0]}",
        )
    )


# `/rollback staging api-gateway -y` after that deploy succeeded: its UpdateService is the
# second of the case, its DescribeServices polls come after it, then its health checks.
ROLLBACK_CASES = [
    Case(
        "UpdateService back taken, answer lost",
        False,
        lambda rig: _held(rig, "UpdateService", after_effect=True, once=("UpdateService", 1)),
    ),
    Case(
        "ECS wait (DescribeServices after UpdateService)",
        False,
        lambda rig: _held(rig, "DescribeServices", once=("UpdateService", 2)),
    ),
    Case(
        "health checks",
        False,
        lambda rig: _health_paused(rig, lambda: _updates(rig) >= 2),
        lift=lambda rig: rig.health.resume(),
    ),
]


def _runs(db: Db) -> dict[str, tuple[str, str, str | None]]:
    """kind -> (id, state, card ts) of each run in the database."""
    rows = db.query("SELECT kind, id, state, message_ts FROM deployments")
    assert len(rows) == len({r[0] for r in rows}), rows
    return {kind: (run_id, state, ts) for kind, run_id, state, ts in rows}


@pytest.mark.parametrize("case", ROLLBACK_CASES, ids=[c.step for c in ROLLBACK_CASES])
async def test_a_bot_killed_mid_rollback_finishes_it_once_when_it_starts_again(
    case: Case, rig: Rig, tmp_path: Path
) -> None:
    original = rig.world.task_definition("staging", SERVICE)
    config = tmp_path / "chatops.toml"
    _config(config, rig.health)
    log = tmp_path / "bot.log"
    db = Db(tmp_path / "bot.db")
    bot = BotProcess(_bot_env(rig, config, db), tmp_path, log)
    await bot.start()
    try:
        assert await bot.deploy(rig.slack, COMMAND) == 200
        await _until(
            lambda: _runs(db).get("deploy", ("", "", None))[1] == "succeeded",
            "the deploy succeed",
            FINAL_BACKSTOP_S,
        )
        reached = case.arm(rig)
        assert await bot.command(rig.slack, "/rollback", f"staging {SERVICE} -y bad release") == 200
        await asyncio.wait_for(reached(), STEP_BACKSTOP_S)
        await bot.kill()
        case.lift(rig)
        await bot.start()
        await _until(
            lambda: (
                (run := _runs(db).get("rollback")) is not None
                and run[1] == "succeeded"
                and "Rollback complete" in _card_text(rig.slack, run[2])
            ),
            "the rollback complete on its card",
            FINAL_BACKSTOP_S,
        )
    finally:
        await bot.stop()

    runs = _runs(db)
    deploy_id = runs["deploy"][0]
    rollback_id, _, rollback_ts = runs["rollback"]
    cards = [
        m
        for m in rig.slack.workspace.channel(CHANNEL).messages
        if m.thread_ts is None and (m.metadata or {}).get("event_type") == CARD_EVENT
    ]
    notices = [
        m
        for m in rig.slack.workspace.channel(CHANNEL).messages
        if m.thread_ts is None and "Deployment Rollback" in (m.text or "")
    ]
    reverted = db.query("SELECT reverted_by FROM deployments WHERE id = ?", (deploy_id,))
    audited = db.query("SELECT action FROM audit_log ORDER BY id")
    assert rig.world.task_definition("staging", SERVICE) == original
    assert rig.world.version("staging", SERVICE) == "v1.3.0"
    assert len(revisions(rig.world, "staging", SERVICE)) == 2  # a rollback registers nothing
    assert [c.ts for c in cards] == [runs["deploy"][2], rollback_ts]
    assert len(notices) == 1
    assert reverted == [(rollback_id,)]
    assert [a for (a,) in audited if a.startswith("/rollback")] == [
        f"/rollback staging {SERVICE} -y bad release"
    ]
    assert db.query("SELECT COUNT(*) FROM open_requests")[0][0] == 0
    assert TOKEN not in log.read_text(encoding="utf-8")
    RESULTS.append(
        (
            "/rollback",
            case.step,
            f"succeeded; ECS on {original.rsplit('/', 1)[-1]} (v1.3.0); 2 revisions; its card "
            "shows it; 1 announcement; the deploy marked reverted",
        )
    )


# A canary of api-gateway in staging, blue live on v1.3.0: 5% for 1 s, 50% for 4 s, 100% for 1 s.
BAKE_50_S = 4.0
KILL_INTO_BAKE_S = 1.5


def _canary_config(path: Path, health: FakeHealth, canary: CanaryWorld) -> None:
    svc = canary.services[SERVICE]
    colour = {
        c: f"""
[services.{SERVICE}.canary.staging.{c}]
ecs_service = "{svc.ecs_services[c]}"
target_group = "{svc.target_groups[c]}"
health_url = "{health.url(f"{SERVICE}-{c}")}"
"""
        for c in ("blue", "green")
    }
    _config(path, health)
    path.write_text(
        path.read_text(encoding="utf-8")
        + f"""
[environments.staging.canary]
check_every = "200ms"
min_requests = 1
ready_timeout = "30s"
stages = [
  {{ weight = 5, bake = "1s" }},
  {{ weight = 50, bake = "{BAKE_50_S:g}s" }},
  {{ weight = 100, bake = "1s" }},
]

[services.{SERVICE}.canary.staging]
listener = "{svc.listener}"
{colour["blue"]}{colour["green"]}""",
        encoding="utf-8",
    )


async def test_a_bot_killed_mid_bake_resumes_the_canary_with_the_bake_time_left(
    rig: Rig, tmp_path: Path, moto_server: str
) -> None:
    canary = CanaryWorld(rig.world, "staging", endpoint_url=moto_server)
    svc = canary.add(SERVICE, "v1.3.0")
    canary.register(svc.target_groups["green"], 2)  # as ECS would once green runs
    rig.health.version_for = lambda service: "1.4.0" if service.endswith("-green") else "1.3.0"
    now = datetime.now(UTC)
    for second in range(-5, 90, 2):
        canary.traffic(SERVICE, "green", requests=100, errors=0, at=now + timedelta(seconds=second))
    config = tmp_path / "chatops.toml"
    _canary_config(config, rig.health, canary)
    log = tmp_path / "bot.log"
    db = Db(tmp_path / "bot.db")
    bot = BotProcess(_bot_env(rig, config, db), tmp_path, log)
    await bot.start()
    try:
        assert await bot.deploy(rig.slack, COMMAND) == 200
        await _until(lambda: canary.weights(SERVICE)["green"] == 50, "50% on green", 20)
        await asyncio.sleep(KILL_INTO_BAKE_S)
        await bot.kill()
        used = db.query("SELECT elapsed_s FROM rollout_stages WHERE position = 1")[0][0]
        await bot.start()
        await _until(
            lambda: (
                (run := db.run()) is not None
                and run[1] == "succeeded"
                and FINAL["succeeded"] in _card_text(rig.slack, run[2])
            ),
            "a successful canary on its card",
            FINAL_BACKSTOP_S,
        )
    finally:
        await bot.stop()

    stages = db.query("SELECT weight, status, elapsed_s FROM rollout_stages ORDER BY position")
    shifts = [
        d
        for (d,) in db.query(
            "SELECT detail FROM deployment_events WHERE stage = 'traffic' ORDER BY rowid"
        )
    ]
    assert 0 < used < BAKE_50_S
    assert [(w, st) for w, st, _ in stages] == [(5, "passed"), (50, "passed"), (100, "passed")]
    assert stages[1][2] == pytest.approx(BAKE_50_S, abs=0.5)
    assert canary.weights(SERVICE) == {"blue": 0, "green": 100}
    assert shifts == [
        "5% on green, 95% on blue",
        "50% on green, 50% on blue",
        "100% on green, 0% on blue",
    ]
    RESULTS.append(
        (
            "canary",
            f"the 50% bake ({used:.1f}s of {BAKE_50_S:g}s used)",
            f"succeeded; resumed at 50% with {BAKE_50_S - used:.1f}s left, baked "
            f"{stages[1][2]:.1f}s in all; weights 5 -> 50 -> 100 once each; green on 100%",
        )
    )
