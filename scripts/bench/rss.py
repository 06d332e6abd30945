"""Benchmark: the bot's memory (RSS) with active runs: half of them canary releases baking at
5% (a one-hour bake), half deploys waiting for an approval.

The bot runs in a child process (as in production, alone in its process: its RSS is what is
read, from /proc), on the real clock, against a moto server (ECS, ELBv2, CloudWatch), the
local Slack and a local health server in this process. Every run is asked for with a signed
`/deploy`; the figure is read once every canary's listener sends 5% to its new colour and
every approval card is posted. Each round starts a fresh bot and store.

    .venv/bin/python scripts/bench/rss.py [--runs-active 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from standins import (
    CHANNEL,
    REGION,
    SECRET,
    dummy_aws_environment,
    free_port,
    health_server,
    wait_for_port,
)
from standins import moto as moto_server

ROOT = Path(__file__).resolve().parent.parent.parent


def _rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of `pid` in MiB."""
    fields = {}
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = row.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _estate(count: int, health_base: str) -> dict[str, Any]:
    """`count` canary services in production and `count` rolling ones in staging; the config."""
    from tests.fakes.canary_world import CanaryWorld
    from tests.fakes.ecs_world import REPO, EcsWorld

    endpoint = os.environ["AWS_ENDPOINT_URL"]
    ecs = EcsWorld(endpoint_url=endpoint)
    estate = CanaryWorld(ecs, "production", endpoint_url=endpoint)
    services: dict[str, Any] = {}
    for i in range(count):
        name = f"canary-{i:03d}"
        svc = estate.add(name, "v1.2.0")
        estate.register(svc.target_groups["green"], 2)
        colours = {c: f"{health_base}/{name}-{c}" for c in ("blue", "green")}
        services[name] = {
            "image": f"{REPO}/{name}",
            "canary": {"production": estate.canary_config(name, colours)},
        }
    for i in range(count):
        name = f"waits-{i:03d}"
        ecs.add_service("staging", name, "v1.2.0")
        services[name] = {"image": f"{REPO}/{name}"}
    return {
        "environments": {
            "production": {
                "cluster": "skillancer-production",
                "region": REGION,
                "ecr_check": False,
                "health": {"retries": 1, "interval": "0s", "timeout": "5s"},
                "rollout": {"poll_interval": "1s"},
                "canary": {
                    "stages": [{"weight": 5, "bake": "1h"}, {"weight": 100, "bake": "0s"}],
                    "check_every": "1m",
                    "min_requests": 10,
                },
            },
            "staging": {
                "cluster": "skillancer-staging",
                "region": REGION,
                "ecr_check": False,
                "required_approvals": 1,
                "approvers": ["UAPPROVER1"],
            },
        },
        "services": services,
    }


def _live_at_five(names: list[str], config: dict[str, Any]) -> int:
    """How many canaries' listeners send 5% to green now (read from moto's ELBv2)."""
    import boto3

    elb: Any = boto3.client("elbv2", region_name=REGION)
    baking = 0
    for name in names:
        canary = config["services"][name]["canary"]["production"]
        action = elb.describe_listeners(ListenerArns=[canary["listener"]])["Listeners"][0][
            "DefaultActions"
        ][0]
        weights = {
            g["TargetGroupArn"]: g["Weight"] for g in action["ForwardConfig"]["TargetGroups"]
        }
        baking += weights.get(canary["green"]["target_group"]) == 5
    return baking


async def _round(active: int, code: Path, workdir: Path) -> tuple[float, float, float]:
    """(RSS at rest, RSS with the runs, peak RSS), MiB, of one fresh bot."""
    from sandbox.slack import AppDelivery, LocalSlack

    health, base = await health_server({"status": "healthy", "version": "1.3.0"})
    slack = LocalSlack()
    await slack.start()
    half = active // 2
    config = _estate(half, base)
    config_path = workdir / f"config-{time.monotonic_ns()}.json"
    config_path.write_text(json.dumps(config))
    port = free_port()
    bot = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve",
        str(config_path),
        "--code",
        str(code),
        "--port",
        str(port),
        "--slack",
        slack.api_url,
        "--db",
        str(workdir / f"bot-{time.monotonic_ns()}.db"),
    )
    delivery = AppDelivery(
        slack, request_url=f"http://127.0.0.1:{port}/slack/events", signing_secret=SECRET
    )
    try:
        await asyncio.to_thread(wait_for_port, port)
        await delivery.command("/deploy", "help", user="UREQUESTER", channel=CHANNEL)
        at_rest, _ = _rss_mb(bot.pid)
        canaries = [f"canary-{i:03d}" for i in range(half)]
        with slack.workspace.feed.subscription() as queue:
            for i in range(half):
                await delivery.command(
                    "/deploy",
                    f"production canary-{i:03d} v1.3.0",
                    user="UREQUESTER",
                    channel=CHANNEL,
                )
                await delivery.command(
                    "/deploy", f"staging waits-{i:03d} v1.3.0", user="UREQUESTER", channel=CHANNEL
                )
            cards = 0
            while cards < 2 * half:
                change = await asyncio.wait_for(queue.get(), 120)
                cards += change.kind.value == "message_posted" and change.channel == CHANNEL
        # Polled: moto tells nobody when a listener changes.
        while await asyncio.to_thread(_live_at_five, canaries, config) < half:  # noqa: ASYNC110
            await asyncio.sleep(0.5)
        readings = []
        for _ in range(3):
            readings.append(_rss_mb(bot.pid))
            await asyncio.sleep(1)
        with_runs = statistics.median(r[0] for r in readings)
        peak = max(r[1] for r in readings)
    finally:
        bot.send_signal(signal.SIGTERM)
        await asyncio.wait_for(bot.wait(), 30)
        await delivery.close()
        await slack.close()
        await health.cleanup()
    return at_rest, with_runs, peak


def _serve(config_path: Path, *, port: int, slack_url: str, db: Path) -> None:
    """The bot alone in this process, until SIGTERM."""
    from aiohttp import web

    from bot.server import build_web_app
    from bot.settings import Settings
    from pipeline.aws import BotoEcs
    from pipeline.kernel.clock import SystemClock
    from pipeline.kernel.config import Config

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        SLACK_BOT_TOKEN="xoxb-bench",
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=slack_url,
        CHATOPS_DB=str(db),
    )
    config = Config.model_validate(json.loads(config_path.read_text()))
    app = build_web_app(settings, config, clock=SystemClock(), ecs=BotoEcs(), start_scheduler=True)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs-active", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--code", type=Path, default=ROOT, help="the checkout to measure (default: this one)"
    )
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--slack", help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.code.resolve()))
    if args.serve is not None:
        _serve(args.serve, port=args.port, slack_url=args.slack, db=args.db)
        return 0
    sys.path.insert(1, str(ROOT))  # the tests' moto estates
    dummy_aws_environment()
    print(
        f"# memory: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}"
    )
    print("| active runs | RSS at rest (MiB) | RSS with the runs (MiB) | peak (MiB) |")
    print("|---|---|---|---|")
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            with moto_server("process"):
                rounds.append(asyncio.run(_round(args.runs_active, args.code, Path(tmp))))
    for at_rest, with_runs, peak in rounds:
        print(f"| {args.runs_active} | {at_rest:.1f} | {with_runs:.1f} | {peak:.1f} |")
    medians = [statistics.median(r[i] for r in rounds) for i in range(3)]
    print(f"| median | {medians[0]:.1f} | {medians[1]:.1f} | {medians[2]:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
