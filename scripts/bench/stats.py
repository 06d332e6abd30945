"""Benchmark: `/deploy stats` on a store of 100k deployment records.

A SQLite store made with the bot's own migrations is filled with `--records` runs going back
from now, one every `--every` minutes: staging deploys a version (two of eight services), and
production promotes it one step later. Of production's deploys, one in 10 fails and is rolled
back and one in 25 fails with its rollback failing; one in 15 of the rest is taken back by a
rollback run later; each succeeded one is watched for 24 hours, and one in 20 of those
breaches; every 288th promotion is followed by an incident (P1, P2 or P3) naming one of its
services. Then each command is answered twice over:

- direct: the use case alone (`DeliveryFigures.figures`: the store's reads and the figures), in
  this process on the store's thread, as the bot runs it; on the clock, and in CPU time (which
  a machine shared with other work stretches less than the clock);
- end to end: the bot (in this process, real clock) answers a signed request at its HTTP
  endpoint and the clock stops when the answer is in the local Slack (about 12 ms of that is
  the ack path itself, as in `history.py`).

Each is run 3 times to warm up, then `--samples` times per round for `--runs` rounds; a
round's figure is its median.

    .venv/bin/python scripts/bench/stats.py [--records 100000] [--every 10 1] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from standins import CHANNEL, migrated, slash_deploy

ROOT = Path(__file__).resolve().parent.parent.parent
SERVICES = (
    "api-gateway",
    "auth-svc",
    "market-svc",
    "skillpod-svc",
    "cockpit-svc",
    "billing-svc",
    "notification-svc",
    "audit-svc",
)
COMMANDS = (
    "stats production 7d",
    "stats production 30d",
    "stats production 90d",
    "stats production 90d auth-svc",
    "stats staging 30d",
)


def _config() -> Any:
    from pipeline.kernel.config import Config

    return Config.model_validate(
        {
            "environments": {
                "staging": {"cluster": "shop-staging", "region": "us-east-1"},
                "production": {
                    "cluster": "shop-production",
                    "region": "us-east-1",
                    "promote_from": "staging",
                },
            },
            "services": {s: {"image": f"registry.example/{s}"} for s in SERVICES},
            "incidents": {"environment": "production"},
        }
    )


class _Rows:
    """The rows of each table, as lists in the columns' order."""

    def __init__(self) -> None:
        from store.deploy.models import Deployment, DeploymentId, DeploymentState, Target
        from store.deploy.rows import deployment_row, target_row

        template = Deployment(
            id=DeploymentId("x"),
            environment="production",
            requested_by="UREQUESTER",
            version=None,
            state=DeploymentState.SUCCEEDED,
            stage=None,
            required_approvals=1,
            channel_id=CHANNEL,
            message_ts=None,
            created_at=datetime.now(UTC),
            updated_at=datetime.now(UTC),
            approval_due_at=None,
            started_at=None,
            finished_at=None,
            error=None,
            targets=(Target(service="x", current_version="v0", target_version="v1"),),
        )
        self.run_template = deployment_row(template)
        self.target_template = target_row("x", 0, template.targets[0])
        self.runs: list[list[Any]] = []
        self.targets: list[list[Any]] = []
        self.events: list[list[Any]] = []
        self.watches: list[list[Any]] = []
        self.alerts: list[list[Any]] = []
        self.incidents: list[list[Any]] = []

    def run(self, **values: Any) -> None:
        row = {**self.run_template, **values}
        self.runs.append(list(row.values()))

    def target(self, **values: Any) -> None:
        row = {**self.target_template, **values}
        self.targets.append(list(row.values()))


def _history(count: int, every: timedelta, now: datetime) -> _Rows:
    """`count` runs ending at `now` and going back, with their rollbacks, watches, incidents."""
    rows = _Rows()
    for i in range(count):
        k = i // 2
        env = "production" if i % 2 == 0 else "staging"
        finished = now - every * i
        created = finished - timedelta(minutes=5 + i % 50)
        run_id = f"{env[0]}-{i:07d}"
        services = (SERVICES[k % 8], SERVICES[(k + 3) % 8])
        state = "succeeded"
        if env == "production" and k % 10 == 3:
            state = "rolled_back"
        elif env == "production" and k % 25 == 7:
            state = "rollback_failed"
        reverted = env == "production" and state == "succeeded" and k % 15 == 4
        iso = finished.isoformat()
        rows.run(
            id=run_id,
            environment=env,
            state=state,
            created_at=created.isoformat(),
            updated_at=iso,
            started_at=created.isoformat(),
            finished_at=iso,
            reverted_by=f"r-{i:07d}" if reverted else None,
        )
        for position, service in enumerate(services):
            rows.target(
                deployment_id=run_id,
                position=position,
                service=service,
                target_version=f"v1.{k // 1000}.{k % 1000}",
                status="healthy" if state == "succeeded" else "rolled_back",
                reverted_by=f"r-{i:07d}" if reverted else None,
            )
        if state != "succeeded":
            failed = (created + timedelta(minutes=3)).isoformat()
            rows.events.append([run_id, failed, "rollout", None, "failed", "health failed"])
        if reverted:
            back = finished + timedelta(minutes=2)
            rows.run(
                id=f"r-{i:07d}",
                environment=env,
                kind="rollback",
                reverts=run_id,
                created_at=back.isoformat(),
                updated_at=back.isoformat(),
                started_at=back.isoformat(),
                finished_at=(back + timedelta(minutes=4)).isoformat(),
            )
        if env == "production" and state == "succeeded":
            for service in services:
                watch = f"{run_id}:{service}"
                ends = (finished + timedelta(hours=24)).isoformat()
                rows.watches.append(
                    [watch, run_id, service, env, iso, ends, ends, "ended", "outcome"]
                )
            if k % 20 == 9:
                at = (finished + timedelta(minutes=1)).isoformat()
                rows.alerts.append([f"{run_id}:{services[0]}", 1, at, "breach", "5xx", "{}"])
            if k % 288 == 0:
                opened = finished + timedelta(minutes=30)
                rows.incidents.append(_incident(k, services[1], opened))
    return rows


def _incident(k: int, service: str, opened: datetime) -> list[Any]:
    severity = ("p1", "p2", "p3")[(k // 288) % 3]
    resolved = (opened + timedelta(hours=1)).isoformat()
    return [
        f"inc-{k}",
        severity,
        f"errors on {service}",
        service,
        "resolved",
        "errors",
        "Unknown",
        "UCMD",
        f"CINC{k}",
        f"inc-{k}",
        opened.isoformat(),
        resolved,
        resolved,
    ]


def _fill(path: Path, count: int, every: timedelta, now: datetime) -> None:
    rows = _history(count, every, now)
    inserts: dict[str, tuple[str, Iterator[list[Any]] | list[list[Any]]]] = {
        "deployments": (",".join(rows.run_template), rows.runs),
        "deployment_targets": (",".join(rows.target_template), rows.targets),
        "deployment_events": ("deployment_id, at, stage, service, status, detail", rows.events),
        "watches": (
            "id, deployment_id, service, environment, started_at, ends_at, next_check_at, "
            "state, outcome",
            rows.watches,
        ),
        "watch_alerts": ("watch_id, seq, at, kind, signals, figures", rows.alerts),
        "incidents": (
            "id, severity, summary, service, status, impact, eta, declared_by, channel_id, "
            "channel_name, opened_at, last_update_at, resolved_at",
            rows.incidents,
        ),
    }
    db = sqlite3.connect(path)
    with db:
        for table, (columns, values) in inserts.items():
            marks = ",".join("?" * len(columns.split(",")))
            db.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", values)  # noqa: S608
    db.execute("ANALYZE")
    db.close()


async def _rounds(once: Callable[[], Awaitable[float]], *, samples: int, runs: int) -> list[float]:
    for _ in range(3):
        await once()
    return [statistics.median([await once() for _ in range(samples)]) for _ in range(runs)]


async def _direct(
    path: Path, *, samples: int, runs: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per command, the median seconds of the use case alone in each round: on the clock, and
    of CPU (every thread of this process: the loop and the store's), which a loaded machine
    stretches less."""
    from commands.deploy.parse import parse_deploy
    from commands.deploy.stats import DeliveryFigures
    from pipeline.kernel.clock import SystemClock
    from store.db import Store
    from store.delivery import Delivery

    config = _config()
    store = await Store.open(path)
    figures = DeliveryFigures(config, Delivery(store), SystemClock())
    found: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    try:
        for text in COMMANDS:
            request = parse_deploy(text, config)
            used: list[float] = []

            async def once(request: Any = request, used: list[float] = used) -> float:
                started, cpu_started = time.perf_counter(), time.process_time()
                await figures.figures(request)
                used.append(time.process_time() - cpu_started)
                return time.perf_counter() - started

            found[text] = await _rounds(once, samples=samples, runs=runs)
            cpu[text] = [statistics.median(used[3:])]
    finally:
        await store.close()
    return found, cpu


async def _end_to_end(path: Path, *, samples: int, runs: int) -> dict[str, list[float]]:
    """Per command, the median seconds from the signed request to the answer in Slack."""
    found: dict[str, list[float]] = {}
    async with slash_deploy(_config(), path) as deploy:
        for text in COMMANDS:
            answer = await deploy(text)
            if "Delivery figures for" not in answer:
                raise SystemExit(f"`/deploy {text}` was answered {answer[:300]}")

            async def once(text: str = text) -> float:
                started = time.perf_counter()
                await deploy(text)
                return time.perf_counter() - started

            found[text] = await _rounds(once, samples=samples, runs=runs)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, nargs="+", default=[100_000])
    parser.add_argument(
        "--every", type=float, nargs="+", default=[10.0, 1.0], help="minutes between runs"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=10)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    print(
        f"# /deploy stats: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    print("| records | one run every | command | direct (ms) | direct CPU (ms) | end to end (ms) |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for count in args.records:
            for every in args.every:
                path = Path(tmp) / f"stats-{count}-{every}.db"
                asyncio.run(migrated(path))
                _fill(path, count, timedelta(minutes=every), datetime.now(UTC))
                direct, cpu = asyncio.run(_direct(path, samples=args.samples, runs=args.runs))
                served = asyncio.run(_end_to_end(path, samples=args.samples, runs=args.runs))
                for text in COMMANDS:
                    print(
                        f"| {count:,} | {every:g} min | `/deploy {text}` | "
                        f"{statistics.median(direct[text]) * 1000:.1f} | "
                        f"{statistics.median(cpu[text]) * 1000:.1f} | "
                        f"{statistics.median(served[text]) * 1000:.1f} |"
                    )
                path.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
