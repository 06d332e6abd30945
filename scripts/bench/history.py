"""Benchmark: `/deploy history` and `/deploy status <id>` on a store of 100k and 1M records.

For each size, a SQLite store is made with the bot's own migrations and filled with that many
finished runs (two services each, three environments, one run every minute going back in
time), then the bot (in this process, real clock) answers signed requests at its HTTP endpoint;
the clock stops when the answer is in the local Slack. Each command is sent 5 times first
(warm-up), then `--samples` times per round, for `--runs` rounds; a round's figure is its median.

    .venv/bin/python scripts/bench/history.py [--records 100000 1000000] [--runs 3]
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from standins import CHANNEL, migrated, slash_deploy

ROOT = Path(__file__).resolve().parent.parent.parent
ENVIRONMENTS = ("staging", "production", "sandbox")
SERVICES = ("api-gateway", "auth-svc")
START = datetime(2026, 12, 1, tzinfo=UTC)


def _fill(path: Path, count: int) -> str:
    """`count` finished runs in the store at `path`; returns the id of one in the middle."""
    from store.deploy.models import Deployment, DeploymentId, DeploymentState, Target
    from store.deploy.rows import deployment_row, target_row

    template = Deployment(
        id=DeploymentId("x"),
        environment="production",
        requested_by="UREQUESTER",
        version="v1.2.3",
        state=DeploymentState.SUCCEEDED,
        stage=None,
        required_approvals=1,
        channel_id=CHANNEL,
        message_ts="1700000000.000100",
        created_at=START,
        updated_at=START,
        approval_due_at=None,
        started_at=START,
        finished_at=START,
        error=None,
        targets=tuple(
            Target(service=s, current_version="v1.2.2", target_version="v1.2.3") for s in SERVICES
        ),
    )
    row = deployment_row(template)
    targets = [target_row("x", i, t) for i, t in enumerate(template.targets)]
    columns = list(row)
    t_columns = list(targets[0])

    def runs() -> Any:
        for i in range(count):
            at = (START - timedelta(minutes=i)).isoformat()
            values = {
                **row,
                "id": f"{int((START - timedelta(minutes=i)).timestamp())}-{i:06x}",
                "environment": ENVIRONMENTS[i % len(ENVIRONMENTS)],
                "created_at": at,
                "updated_at": at,
                "started_at": at,
                "finished_at": at,
            }
            yield [values[c] for c in columns]

    def target_rows() -> Any:
        for i in range(count):
            run_id = f"{int((START - timedelta(minutes=i)).timestamp())}-{i:06x}"
            for t in targets:
                yield [run_id if c == "deployment_id" else t[c] for c in t_columns]

    db = sqlite3.connect(path)
    with db:
        db.executemany(
            f"INSERT INTO deployments ({','.join(columns)}) "  # noqa: S608
            f"VALUES ({','.join('?' * len(columns))})",
            runs(),
        )
        db.executemany(
            f"INSERT INTO deployment_targets ({','.join(t_columns)}) "  # noqa: S608
            f"VALUES ({','.join('?' * len(t_columns))})",
            target_rows(),
        )
    db.execute("ANALYZE")
    db.close()
    middle = count // 2
    return f"{int((START - timedelta(minutes=middle)).timestamp())}-{middle:06x}"


async def _measure(
    path: Path, expect: dict[str, str], *, samples: int, runs: int
) -> dict[str, Any]:
    """Per command, the median seconds of each round."""
    from pipeline.kernel.config import Config

    config = Config.model_validate(
        {
            "environments": {
                e: {"cluster": f"shop-{e}", "region": "us-east-1"} for e in ENVIRONMENTS
            },
            "services": {s: {"image": f"registry.example/{s}"} for s in SERVICES},
        }
    )
    figures: dict[str, Any] = {}
    async with slash_deploy(config, path) as deploy:
        for text in expect:
            answer = await deploy(text)
            if expect[text] not in answer:
                raise SystemExit(f"`/deploy {text}` was answered {answer[:300]}")

            async def once(text: str = text) -> float:
                started = time.perf_counter()
                await deploy(text)
                return time.perf_counter() - started

            for _ in range(4):
                await once()
            figures[text] = [
                statistics.median([await once() for _ in range(samples)]) for _ in range(runs)
            ]
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument(
        "--code", type=Path, default=ROOT, help="the checkout to measure (default: this one)"
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.code.resolve()))
    print(
        f"# history and status: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {time.strftime('%Y-%m-%d')}"
    )
    print("| records | command | round medians (ms) | median (ms) |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for count in args.records:
            path = Path(tmp) / f"history-{count}.db"
            asyncio.run(migrated(path))
            middle = _fill(path, count)
            # What each answer must show: the newest run, a production one, the run asked for.
            expect = {
                "history": f"{int(START.timestamp())}-000000",
                "history production": f"{int((START - timedelta(minutes=1)).timestamp())}-000001",
                f"status {middle}": middle,
            }
            figures = asyncio.run(_measure(path, expect, samples=args.samples, runs=args.runs))
            for text, rounds in figures.items():
                shown = ", ".join(f"{r * 1000:.1f}" for r in rounds)
                name = text.replace(middle, "<id>")
                print(
                    f"| {count:,} | `/deploy {name}` | {shown} | "
                    f"{statistics.median(rounds) * 1000:.1f} |"
                )
            path.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
