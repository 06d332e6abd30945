"""The 5xx gate: over 1% fails, too few requests is no verdict, no data is never a pass."""

from __future__ import annotations

import pytest

from pipeline.canary.gate import Verdict, read_gate
from pipeline.kernel.config.canary import CanarySettings
from pipeline.kernel.traffic import MetricSums

SEED = CanarySettings.model_validate({})


@pytest.mark.parametrize(
    ("requests", "errors", "without_data_s", "verdict"),
    [
        (1000, 10, 0, Verdict.PASS),  # exactly 1% is not over 1%
        (1000, 11, 0, Verdict.FAIL),
        (500, 10, 0, Verdict.FAIL),  # 2%
        (3, 1, 0, Verdict.WAIT),  # 33%, but 3 requests are no verdict
        (49, 49, 0, Verdict.WAIT),
        (50, 0, 0, Verdict.PASS),
        (None, None, 60, Verdict.WAIT),
        (None, None, 120, Verdict.FAIL),
        (200, None, 0, Verdict.PASS),  # no 5xx series: no errors
    ],
)
def test_the_gate_follows_the_seed_thresholds(
    requests: float | None, errors: float | None, without_data_s: float, verdict: Verdict
) -> None:
    reading = read_gate(
        MetricSums(requests=requests, errors_5xx=errors, slowest_s=None),
        SEED,
        without_data_s=without_data_s,
    )

    assert reading.verdict is verdict


def test_a_slow_target_is_a_warning_not_a_failure() -> None:
    reading = read_gate(MetricSums(1000, 0, 6.2), SEED, without_data_s=0)

    assert (reading.verdict, reading.slow) == (Verdict.PASS, True)


def test_the_reading_says_its_figures() -> None:
    reading = read_gate(MetricSums(500, 10, None), SEED, without_data_s=0)

    assert reading.why == "5xx 2.0% (10/500) is over 1.0%"
