"""Benchmark: how fast the bot acknowledges a signed `/deploy help`, against a bare Bolt app.

In one run it starts a local Slack (in this process), the bot (`chatops-bot serve`, in a child
process, with a SQLite file) and the floor: a bare Bolt `AsyncApp` that only acknowledges, in a
child process of its own on the same aiohttp stack. It then sends signed `/deploy help` requests
to each (every body unique, so none is a replay) at each concurrency, alternating floor and bot,
and prints p50, p99 and throughput, and the bot's ratio to the floor, as the median of
`--repeat` rounds. `--bot LABEL=TREE` measures another checkout's bot in the same run (its own
`.venv` when it has one), e.g. the code before a change:

    .venv/bin/python scripts/bench/ack.py --bot before=/work/wt/before --bot after=.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import aiohttp

ROOT = Path(__file__).resolve().parent.parent.parent
SECRET = "bench-signing-secret"
READY_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Figures:
    p50_ms: float
    p99_ms: float
    rps: float


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _python_of(tree: Path) -> str:
    venv = tree / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _signed(body: str) -> dict[str, str]:
    import hashlib
    import hmac

    stamp = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def _requests(n: int, serial: list[int], slack_url: str) -> list[tuple[str, dict[str, str]]]:
    """`n` signed `/deploy help` commands, each with its own trigger id (so its own signature)."""
    out = []
    for _ in range(n):
        serial[0] += 1
        body = urlencode(
            {
                "token": "legacy",
                "team_id": "T1",
                "team_domain": "bench",
                "channel_id": "CDEPLOYS",
                "channel_name": "deploys",
                "user_id": "UBENCH",
                "user_name": "bench",
                "command": "/deploy",
                "text": "help",
                "api_app_id": "A1",
                "response_url": f"{slack_url}/respond/bench-{serial[0]}",
                "trigger_id": f"bench.{serial[0]}",
            }
        )
        out.append((body, _signed(body)))
    return out


async def _load(
    url: str, requests: list[tuple[str, dict[str, str]]], concurrency: int, *, expect_text: bool
) -> Figures:
    latencies: list[float] = []
    queue = iter(requests)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            for body, headers in queue:
                start = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as resp:
                    text = await resp.text()
                latencies.append(time.perf_counter() - start)
                if resp.status != 200 or (expect_text and "/deploy" not in text):
                    raise RuntimeError(f"unexpected answer {resp.status}: {text[:200]}")

        began = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
        elapsed = time.perf_counter() - began
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return Figures(statistics.median(latencies) * 1000, p99 * 1000, len(latencies) / elapsed)


class Served:
    """A server in a child process, ready once its /healthz (or its port) answers."""

    def __init__(self, label: str, cmd: list[str], env: dict[str, str], port: int) -> None:
        self.label, self.port = label, port
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    async def ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                    raise RuntimeError(f"{self.label} exited: {err[-2000:]}")
                try:
                    async with session.get(f"http://127.0.0.1:{self.port}/healthz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.label} did not start within {READY_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _start_bot(label: str, tree: Path, slack_url: str, workdir: Path) -> Served:
    port = _free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(tree),
        "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack_url,
        "CHATOPS_CONFIG": str(tree / "chatops.example.toml"),
        "CHATOPS_DB": str(workdir / f"{label}.db"),
        "CHATOPS_HOST": "127.0.0.1",
        "PORT": str(port),
        "CHATOPS_LOG_LEVEL": "WARNING",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
    }
    cmd = [
        _python_of(tree),
        "-c",
        "import sys; from bot.main import main; sys.exit(main(['serve']))",
    ]
    return Served(label, cmd, env, port)


def _start_floor(slack_url: str) -> Served:
    port = _free_port()
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--floor", str(port), slack_url]
    return Served("floor", cmd, env, port)


def serve_floor(port: int, slack_url: str) -> None:
    """The floor: a bare Bolt AsyncApp that acknowledges `/deploy` and does nothing else."""
    from aiohttp import web
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncAck, AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    app = AsyncApp(
        client=AsyncWebClient(token="xoxb-bench", base_url=slack_url),
        signing_secret=SECRET,
        process_before_response=False,
    )

    @app.command("/deploy")
    async def only_ack(ack: AsyncAck) -> None:
        await ack()

    async def events(request: web.Request) -> web.Response:
        bolt = await to_bolt_request(request)
        return await to_aiohttp_response(await app.async_dispatch(bolt))

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    web_app = web.Application()
    web_app.router.add_post("/slack/events", events)
    web_app.router.add_get("/healthz", healthz)
    web.run_app(web_app, host="127.0.0.1", port=port, print=None)


async def bench(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT))
    from sandbox.slack import LocalSlack

    levels = [(1, args.n1), (50, args.n), (200, args.n)]
    results: dict[tuple[str, int], list[Figures]] = {}
    serial = [0]
    async with LocalSlack() as slack:
        slack_url = slack.base
        with tempfile.TemporaryDirectory() as tmp:
            servers = [_start_floor(slack.api_url)]
            servers += [
                _start_bot(label, tree, slack.api_url, Path(tmp)) for label, tree in args.bots
            ]
            try:
                for server in servers:
                    await server.ready()
                for server in servers:  # warm up: imports, auth.test, first connections
                    await _load(
                        server.url,
                        _requests(50, serial, slack_url),
                        10,
                        expect_text=server.label != "floor",
                    )
                for _ in range(args.repeat):
                    for concurrency, n in levels:
                        for server in servers:
                            figures = await _load(
                                server.url,
                                _requests(n, serial, slack_url),
                                concurrency,
                                expect_text=server.label != "floor",
                            )
                            results.setdefault((server.label, concurrency), []).append(figures)
            finally:
                for server in servers:
                    server.stop()
    _print(results, [s.label for s in servers], levels, args.repeat)


def _median(runs: list[Figures]) -> Figures:
    return Figures(
        statistics.median(f.p50_ms for f in runs),
        statistics.median(f.p99_ms for f in runs),
        statistics.median(f.rps for f in runs),
    )


def _print(
    results: dict[tuple[str, int], list[Figures]],
    labels: list[str],
    levels: list[tuple[int, int]],
    repeat: int,
) -> None:
    print(
        f"signed /deploy help; machine: {os.cpu_count()} cores (nproc), Python "
        f"{platform.python_version()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
        f"median of {repeat} round(s)"
    )
    print()
    print(
        "| server | concurrency | requests | p50 ms | p99 ms | req/s | p50 / floor | "
        "p99 / floor | req/s / floor |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for concurrency, n in levels:
        floor = _median(results[("floor", concurrency)])
        for label in labels:
            f = _median(results[(label, concurrency)])
            print(
                f"| {label} | {concurrency} | {n} | {f.p50_ms:.1f} | {f.p99_ms:.1f} | "
                f"{f.rps:.0f} | {f.p50_ms / floor.p50_ms:.2f}x | {f.p99_ms / floor.p99_ms:.2f}x "
                f"| {f.rps / floor.rps:.2f}x |"
            )


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--floor":
        serve_floor(int(sys.argv[2]), sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--bot",
        action="append",
        default=[],
        metavar="LABEL=TREE",
        help="a checkout whose bot to measure (default: bot=this checkout)",
    )
    parser.add_argument("-n", type=int, default=3000, help="requests at 50 and 200 concurrent")
    parser.add_argument("--n1", type=int, default=300, help="requests at concurrency 1")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are printed")
    args = parser.parse_args()
    pairs = [b.split("=", 1) for b in args.bot] or [["bot", str(ROOT)]]
    args.bots = [(label, Path(tree).resolve()) for label, tree in pairs]
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
