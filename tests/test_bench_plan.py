"""The plan card, history and memory benchmarks (issue 17, point 6) still run against today's
bot and print their tables. Run briefly, with tiny numbers; their figures are not checked (a
benchmark measures, a test does not time)."""

from __future__ import annotations

import pytest

from tests.bench_run import run_bench


def _run(script: str, *args: str) -> str:
    done = run_bench(f"bench/{script}", *args)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_the_plan_card_benchmark_prints_a_row_per_fleet_size() -> None:
    out = _run("plan_card.py", "--services", "2", "3", "--runs", "1")

    assert "| services | samples (ms) | median (ms) |" in out
    assert [line.split("|")[1].strip() for line in out.splitlines()[3:]] == ["2", "3"]


@pytest.mark.slow
def test_the_history_benchmark_times_history_and_status_on_a_filled_store() -> None:
    out = _run("history.py", "--records", "1000", "--runs", "1", "--samples", "2")

    rows = [line for line in out.splitlines() if line.startswith("| 1,000 |")]
    assert [row.split("|")[2].strip() for row in rows] == [
        "`/deploy history`",
        "`/deploy history production`",
        "`/deploy status <id>`",
    ]


@pytest.mark.slow
def test_the_memory_benchmark_reads_the_bots_rss_with_its_runs_active() -> None:
    out = _run("rss.py", "--runs-active", "4", "--rounds", "1")

    assert "| active runs | RSS at rest (MiB) | RSS with the runs (MiB) | peak (MiB) |" in out
    assert any(line.startswith("| 4 | ") for line in out.splitlines())
    assert any(line.startswith("| median | ") for line in out.splitlines())
