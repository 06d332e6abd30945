"""The 5xx gate of a canary stage: a verdict from raw CloudWatch sums.

- The ratio is `HTTPCode_Target_5XX_Count / RequestCount` of the new colour since the stage
  began; above `max_5xx_ratio` fails the stage (seed 002: "5xx errors > 1%: immediate rollback").
- Fewer than `min_requests` requests is no verdict: 1 error in 3 requests proves nothing.
- No data is "not yet", never a pass; no data for `no_data_timeout` fails the stage.
- `TargetResponseTime` above `slow_response` is a warning on the card, not a failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pipeline.kernel.config.canary import CanarySettings
from pipeline.kernel.traffic import MetricSums


class Verdict(StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    FAIL = "fail"
    WAIT = "wait"
    """No data yet, or too few requests for a verdict."""


@dataclass(frozen=True)
class GateReading:
    verdict: Verdict
    requests: float
    errors: float
    slowest_s: float | None
    slow: bool
    why: str

    @property
    def ratio(self) -> float | None:
        return self.errors / self.requests if self.requests else None


def read_gate(sums: MetricSums, settings: CanarySettings, *, without_data_s: float) -> GateReading:
    """The gate's verdict on `sums`; `without_data_s` is how long the stage has had no data."""
    slow = sums.slowest_s is not None and sums.slowest_s > settings.slow_response_s
    if sums.requests is None:
        if without_data_s >= settings.no_data_timeout_s:
            return GateReading(
                Verdict.FAIL,
                0,
                0,
                sums.slowest_s,
                slow,
                f"no CloudWatch data for {without_data_s:.0f}s",
            )
        return GateReading(Verdict.WAIT, 0, 0, sums.slowest_s, slow, "no data yet")
    requests = sums.requests
    errors = sums.errors_5xx or 0.0
    ratio = errors / requests if requests else 0.0
    figures = f"5xx {ratio:.1%} ({errors:.0f}/{requests:.0f})"
    if requests < settings.min_requests:
        return GateReading(
            Verdict.WAIT,
            requests,
            errors,
            sums.slowest_s,
            slow,
            f"{figures}: under {settings.min_requests} requests, no verdict yet",
        )
    if ratio > settings.max_5xx_ratio:
        return GateReading(
            Verdict.FAIL,
            requests,
            errors,
            sums.slowest_s,
            slow,
            f"{figures} is over {settings.max_5xx_ratio:.1%}",
        )
    return GateReading(Verdict.PASS, requests, errors, sums.slowest_s, slow, figures)
