"""The ack benchmark still runs against today's bot and prints its table (its figures are not
checked here: a benchmark measures, a test does not time)."""

from __future__ import annotations

import pytest

from tests.bench_run import run_bench


@pytest.mark.slow
def test_the_ack_benchmark_measures_the_bot_and_the_floor_at_each_concurrency() -> None:
    done = run_bench("bench/ack.py", "-n", "20", "--n1", "3", "--repeat", "1", timeout=120)

    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split(" | ")[:2] for line in done.stdout.splitlines() if line.startswith("| ")]
    assert rows[0] == ["| server", "concurrency"]
    assert rows[1:] == [
        [f"| {server}", str(c)] for c in (1, 50, 200) for server in ("floor", "bot")
    ]
    assert "p50 / floor" in done.stdout
