"""What the benchmarks run the bot against: a moto server in a child process, a local health
server, and a bot on the local Slack (built from the checkout being measured)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web

REGION = "us-east-1"
SECRET = "bench-signing-secret"
CHANNEL = "CDEPLOYS"


def dummy_aws_environment() -> None:
    """Credentials moto accepts, and no endpoint left over from the caller's environment."""
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": REGION,
        }
    )
    for key in [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL")]:
        del os.environ[key]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, *, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as conn:
            if conn.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listened on 127.0.0.1:{port} within {timeout_s:.0f}s")


@contextlib.contextmanager
def moto(where: str) -> Iterator[int | None]:
    """moto in this process (its CPU shared with the bot's), or a moto server in a child
    process (as AWS would be: elsewhere), reached through AWS_ENDPOINT_URL; the server's pid."""
    if where == "inline":
        from moto import mock_aws

        with mock_aws():
            yield None
        return
    port = free_port()
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and moto's server module
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # ECS services in moto report as many running tasks as they want (a steady rollout).
        env={**os.environ, "MOTO_ECS_SERVICE_RUNNING": "2"},
    )
    try:
        wait_for_port(port)
        os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
        yield server.pid
    finally:
        os.environ.pop("AWS_ENDPOINT_URL", None)
        server.terminate()
        server.wait()


def cpu_s(pid: int) -> float:
    """CPU seconds (user and system) process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def health_process(answer: dict[str, Any]) -> Iterator[str]:
    """`health_server` in a child process (as a fleet's endpoints are: elsewhere); its URL."""
    port = free_port()
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and this module
        [sys.executable, __file__, "--health", str(port), json.dumps(answer)],
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait()


async def _serve_health(port: int, answer: dict[str, Any]) -> None:
    runner, _ = await health_server(answer, port=port)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def health_server(answer: dict[str, Any], *, port: int = 0) -> tuple[web.AppRunner, str]:
    """A server answering `answer` (HTTP 200) on every path; its runner and base URL."""

    async def ok(request: web.Request) -> web.Response:
        return web.json_response(answer)

    app = web.Application()
    app.router.add_get("/{tail:.*}", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


if __name__ == "__main__" and sys.argv[1:2] == ["--health"]:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_health(int(sys.argv[2]), json.loads(sys.argv[3])))


async def migrated(path: Path) -> None:
    """A store at `path` with every migration of the checkout measured."""
    from store.db import Store

    store = await Store.open(path)
    await store.close()


@contextlib.asynccontextmanager
async def slash_deploy(config: Any, db: Path) -> AsyncIterator[Callable[[str], Awaitable[str]]]:
    """The bot of the checkout measured, serving HTTP on 127.0.0.1 on the store at `db`, with
    the local Slack: yields `deploy(text)`, which sends a signed `/deploy <text>` as a person
    and returns the private answer the bot gives."""
    from bot.server import EVENTS_PATH, build_web_app
    from bot.settings import Settings
    from pipeline.aws import BotoEcs
    from pipeline.kernel.clock import SystemClock
    from sandbox.slack import AppDelivery, LocalSlack

    slack = LocalSlack()
    await slack.start()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        SLACK_BOT_TOKEN="xoxb-bench",
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=slack.api_url,
        CHATOPS_DB=str(db),
    )
    app = build_web_app(settings, config, clock=SystemClock(), ecs=BotoEcs(), start_scheduler=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    delivery = AppDelivery(
        slack, request_url=f"http://127.0.0.1:{port}{EVENTS_PATH}", signing_secret=SECRET
    )
    try:
        with slack.workspace.feed.subscription() as queue:

            async def deploy(text: str) -> str:
                await delivery.command("/deploy", text, user="UREQUESTER", channel=CHANNEL)
                while True:
                    change = await asyncio.wait_for(queue.get(), 60)
                    if change.kind.value == "ephemeral" and change.channel == CHANNEL:
                        return str(change.data)

            yield deploy
    finally:
        await delivery.close()
        await runner.cleanup()
        await slack.close()
