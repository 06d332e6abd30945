"""The benchmark scripts still run against today's engine (their figures are not checked here:
a benchmark measures, a test does not time)."""

from __future__ import annotations

import pytest

from tests.bench_run import run_bench


@pytest.mark.slow
def test_the_canary_benchmark_runs_a_release_and_prints_the_overhead() -> None:
    done = run_bench("bench_canary.py", "--runs", "1", timeout=120)

    assert done.returncode == 0, done.stderr[-2000:]
    assert "8 services, 3 stages" in done.stdout
    assert "engine overhead: median" in done.stdout


@pytest.mark.slow
def test_the_stats_benchmark_answers_each_command_on_a_filled_store() -> None:
    done = run_bench(
        "bench/stats.py",
        *("--records", "200", "--every", "10", "--runs", "1", "--samples", "1"),
        timeout=120,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| 200 |")]
    assert [row.split("|")[3].strip() for row in rows] == [
        "`/deploy stats production 7d`",
        "`/deploy stats production 30d`",
        "`/deploy stats production 90d`",
        "`/deploy stats production 90d auth-svc`",
        "`/deploy stats staging 30d`",
    ]
