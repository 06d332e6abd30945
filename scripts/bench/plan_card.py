"""Benchmark: command -> plan card. A signed `/deploy production all` reaches the bot's HTTP
endpoint; the clock stops when the local Slack has the plan card in the channel.

The bot runs in this process on the real clock, against moto (ECS, ECR, in-process), the local
Slack (`sandbox.slack.LocalSlack`) and a local health server for the source environment
(production promotes from staging, whose health is checked; each image's tag is looked up in
ECR). Each sample starts a fresh bot and store, sends `--dry-run` once (so the bot's AWS
clients exist, as they do in a bot that has served a command), then times the real command.

    .venv/bin/python scripts/bench/plan_card.py [--services 8 200] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from standins import CHANNEL, REGION, SECRET, cpu_s, dummy_aws_environment, health_process, moto

ROOT = Path(__file__).resolve().parent.parent.parent

ACCOUNT = "123456789012"
REPO = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"


def _estate(count: int) -> list[str]:
    """`count` services in staging (v1.3.0) and production (v1.2.0), v1.3.0 pushed to ECR."""
    import boto3

    ecs = boto3.client("ecs", region_name=REGION)
    ecr = boto3.client("ecr", region_name=REGION)
    names = [f"svc-{i:03d}" for i in range(count)]
    for env in ("staging", "production"):
        ecs.create_cluster(clusterName=f"shop-{env}")
    for name in names:
        ecr.create_repository(repositoryName=name)
        manifest = (
            '{"schemaVersion": 2, "mediaType": '
            '"application/vnd.docker.distribution.manifest.v2+json", '
            f'"config": {{"digest": "sha256:{"0" * 64}"}}, '
            f'"layers": [{{"digest": "sha256:{name.encode().hex():0<64}", "size": 1}}]}}'
        )
        ecr.put_image(repositoryName=name, imageManifest=manifest, imageTag="v1.3.0")
        for env, version in (("staging", "v1.3.0"), ("production", "v1.2.0")):
            td = ecs.register_task_definition(
                family=f"{env}-{name}",
                containerDefinitions=[
                    {"name": name, "image": f"{REPO}/{name}:{version}", "memory": 256}
                ],
            )["taskDefinition"]["taskDefinitionArn"]
            ecs.create_service(
                cluster=f"shop-{env}", serviceName=name, taskDefinition=td, desiredCount=1
            )
    return names


def _config(names: list[str], health_base: str) -> Any:
    from pipeline.kernel.config import Config

    return Config.model_validate(
        {
            "environments": {
                "staging": {"cluster": "shop-staging", "region": REGION, "ecr_check": False},
                "production": {
                    "cluster": "shop-production",
                    "region": REGION,
                    "promote_from": "staging",
                    "required_approvals": 1,
                    "approvers": ["UAPPROVER1"],
                },
            },
            "services": {
                n: {
                    "image": f"{REPO}/{n}",
                    "health_url": {"staging": f"{health_base}/{n}"},
                }
                for n in names
            },
        }
    )


async def _first(queue: asyncio.Queue[Any], kind: str, channel: str) -> None:
    while True:
        change = await queue.get()
        if change.kind.value == kind and change.channel == channel:
            return


async def _settle() -> None:
    """Wait for the work Bolt does after the ack (saving the card's ts, the audit row)."""
    for _ in range(1000):
        pending = [
            t
            for t in asyncio.all_tasks()
            if not t.done()
            and "run_ack_function_asynchronously" in getattr(t.get_coro(), "__qualname__", "")
        ]
        if not pending:
            return
        await asyncio.gather(*pending, return_exceptions=True)


async def one_sample(
    names: list[str], workdir: Path, *, base: str, moto_pid: int | None
) -> tuple[float, float | None]:
    """Seconds from sending `/deploy production all` to the card in the local Slack, and the
    CPU seconds the moto server spent meanwhile (None when moto runs in this process)."""
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
        CHATOPS_DB=str(workdir / f"bench-{time.monotonic_ns()}.db"),
    )
    app = build_web_app(
        settings, _config(names, base), clock=SystemClock(), ecs=BotoEcs(), start_scheduler=False
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    delivery = AppDelivery(
        slack,
        request_url=f"http://127.0.0.1:{port}{EVENTS_PATH}",
        signing_secret=SECRET,
        team_id="T1",
    )
    try:
        with slack.workspace.feed.subscription() as queue:
            await delivery.command(
                "/deploy", "production all --dry-run", user="UREQUESTER", channel=CHANNEL
            )
            await asyncio.wait_for(_first(queue, "ephemeral", CHANNEL), 120)
            moto_before = cpu_s(moto_pid) if moto_pid is not None else None
            started = time.perf_counter()
            await delivery.command("/deploy", "production all", user="UREQUESTER", channel=CHANNEL)
            await asyncio.wait_for(_first(queue, "message_posted", CHANNEL), 120)
            elapsed = time.perf_counter() - started
            moto_cpu = (
                cpu_s(moto_pid) - moto_before if moto_pid and moto_before is not None else None
            )
            await _settle()
    finally:
        await delivery.close()
        await runner.cleanup()
        await slack.close()
    return elapsed, moto_cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, nargs="+", default=[8, 200])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--moto", choices=["process", "inline"], default="process")
    parser.add_argument(
        "--code", type=Path, default=ROOT, help="the checkout to measure (default: this one)"
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.code.resolve()))
    dummy_aws_environment()
    print(
        f"# plan card: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"moto {args.moto}, {time.strftime('%Y-%m-%d')}"
    )
    print("| services | samples (ms) | median (ms) | moto server's CPU meanwhile (ms) |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for count in args.services:
            with moto(args.moto) as pid, health_process({"status": "healthy"}) as base:
                names = _estate(count)
                samples = [
                    asyncio.run(one_sample(names, Path(tmp), base=base, moto_pid=pid))
                    for _ in range(args.runs)
                ]
            times = [t for t, _ in samples]
            shown = ", ".join(f"{t * 1000:.0f}" for t in times)
            moto_cpu = [c for _, c in samples if c is not None]
            spent = f"{statistics.median(moto_cpu) * 1000:.0f}" if moto_cpu else "(in process)"
            print(f"| {count} | {shown} | {statistics.median(times) * 1000:.0f} | {spent} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
