"""Benchmark: the canary engine's own overhead.

Runs an 8-service production canary release (blue/green behind one ALB) through three stages
with zero bake against moto (ECS, ELBv2, CloudWatch in-process), with local health endpoints and
a real SQLite store, and prints the wall time minus the waits the engine was told to do (every
`clock.sleep`). Target: under 3 s.

    .venv/bin/python scripts/bench_canary.py [--runs 3]

Measured on the 2-core development machine (2026-12-01, moto 5.2.5, Python 3.11):

    run 1: 8 services, 3 stages, wall 3.87s, told to wait 3.00s, engine overhead 0.87s
    run 2: 8 services, 3 stages, wall 4.06s, told to wait 3.00s, engine overhead 1.06s
    run 3: 8 services, 3 stages, wall 3.93s, told to wait 3.00s, engine overhead 0.93s
    engine overhead: median 0.93s, min 0.87s, max 1.06s (target < 3s)

The waits are the three `check_every` ticks of 1 s (one per stage; the bakes are 0 s).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVICES = [f"svc-{i}" for i in range(8)]


class RecordingClock:
    """The real clock, adding up every wait the engine asks for."""

    def __init__(self) -> None:
        self.waited_s = 0.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        self.waited_s += seconds
        await asyncio.sleep(seconds)


class QuietNotifier:
    async def post_card(self, run: Any) -> str:
        return "1.1"

    async def find_card(self, run: Any) -> str | None:
        return None

    async def tell(self, run: Any, message: Any) -> None:
        return None

    async def break_glass(self, run: Any) -> None:
        return None

    async def redraw(self, run: Any) -> None:
        return None

    async def stage_changed(self, run: Any, event: Any) -> None:
        return None

    async def run_changed(self, run: Any) -> None:
        return None


class NoTimers:
    def arm(self, key: str, at: datetime) -> None:
        return None

    def disarm(self, key: str) -> None:
        return None


async def _health_server() -> tuple[web.AppRunner, str]:
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"status": "healthy", "version": "1.3.0"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def one_release(workdir: Path) -> tuple[float, float, int]:
    from pipeline.aws import BotoEcs
    from pipeline.aws.cloudwatch import BotoMetrics
    from pipeline.aws.elbv2 import BotoLoadBalancer
    from pipeline.aws.gates import BotoRecordStore, BotoRegistry, BotoSnapshots, BotoTasks
    from pipeline.deploy import DeployEngine
    from pipeline.fleet import Fleet
    from pipeline.health import HealthChecker
    from pipeline.kernel.config import Config
    from pipeline.preflight import Preflight
    from store.db import Store
    from store.deploy.locks import Locks
    from store.deploy.models import Deployment, DeploymentId, DeploymentState, Target
    from store.deploy.repository import Deployments
    from store.deploy.stages import RolloutStages
    from tests.fakes.canary_world import CanaryWorld
    from tests.fakes.ecs_world import REGION, REPO, EcsWorld

    ecs_world = EcsWorld()
    estate = CanaryWorld(ecs_world, "production")
    health_runner, base = await _health_server()
    services: dict[str, Any] = {}
    for name in SERVICES:
        svc = estate.add(name, "v1.2.0")
        estate.register(svc.target_groups["green"], 2)
        colours = {c: f"{base}/{name}-{c}" for c in ("blue", "green")}
        services[name] = {
            "image": f"{REPO}/{name}",
            "canary": {"production": estate.canary_config(name, colours)},
            "smoke": [{"path": "/health", "version_field": "version"}],
        }
    config = Config.model_validate(
        {
            "environments": {
                "production": {
                    "cluster": "skillancer-production",
                    "region": REGION,
                    "health": {"retries": 1, "interval": "0s", "timeout": "5s"},
                    "rollout": {"poll_interval": "0s", "max_parallel": 8},
                    "ecr_check": False,
                    "canary": {
                        "stages": [
                            {"weight": 5, "bake": "0s"},
                            {"weight": 50, "bake": "0s"},
                            {"weight": 100, "bake": "0s"},
                        ],
                        "check_every": "1s",
                        "min_requests": 10,
                    },
                }
            },
            "services": services,
        }
    )
    store = await Store.open(workdir / f"bench-{time.monotonic_ns()}.db")
    clock = RecordingClock()
    async with aiohttp.ClientSession() as session:
        deployments = Deployments(store)
        ecs, load_balancer = BotoEcs(), BotoLoadBalancer()
        engine = DeployEngine(
            config=config,
            deployments=deployments,
            stages=RolloutStages(store),
            ecs=ecs,
            fleet=Fleet(ecs=ecs, load_balancer=load_balancer),
            health=HealthChecker(session, clock),
            notifier=QuietNotifier(),
            timers=NoTimers(),
            clock=clock,
            load_balancer=load_balancer,
            metrics=BotoMetrics(),
            # No gate is configured here (no ECR check, database, migrations or records):
            # the pre-flight check before the run reads only the lock and the schedule.
            preflight=Preflight(
                config=config,
                locks=Locks(store),
                registry=BotoRegistry(),
                health=HealthChecker(session, clock),
            ),
            snapshots=BotoSnapshots(),
            tasks=BotoTasks(),
            records=BotoRecordStore(),
        )
        now = clock.now()
        # CloudWatch data must fall inside each stage: a point every second for a minute.
        for name in SERVICES:
            for second in range(60):
                estate.traffic(
                    name, "green", requests=100, errors=0, at=now + timedelta(seconds=second)
                )
        targets = tuple(
            Target(service=name, current_version="v1.2.0", target_version="v1.3.0")
            for name in SERVICES
        )
        run = Deployment(
            id=DeploymentId("bench-1"),
            environment="production",
            requested_by="UBENCH",
            version="v1.3.0",
            state=DeploymentState.APPROVED,
            stage=None,
            required_approvals=0,
            channel_id=None,
            message_ts=None,
            created_at=now,
            updated_at=now,
            approval_due_at=None,
            started_at=None,
            finished_at=None,
            error=None,
            targets=targets,
        )
        await deployments.create(run)
        started = time.perf_counter()
        await engine.execute(run.id)
        wall = time.perf_counter() - started
        done = await deployments.get(run.id)
    await store.close()
    await health_runner.cleanup()
    assert done is not None
    if done.state is not DeploymentState.SUCCEEDED:
        raise SystemExit(f"the release ended {done.state.value}: {done.error}")
    return wall, clock.waited_s, len(done.stages)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "MOTO_ECS_SERVICE_RUNNING": "2",
        }
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from moto import mock_aws

    overheads = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            with mock_aws():
                wall, waited, stages = asyncio.run(one_release(Path(tmp)))
            overheads.append(wall - waited)
            print(
                f"run {i + 1}: 8 services, {stages} stages, wall {wall:.2f}s, "
                f"told to wait {waited:.2f}s, engine overhead {wall - waited:.2f}s"
            )
    print(
        f"engine overhead: median {statistics.median(overheads):.2f}s, "
        f"min {min(overheads):.2f}s, max {max(overheads):.2f}s (target < 3s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
