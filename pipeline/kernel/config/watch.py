"""The watch feature's settings: how long each changed service is watched after a deploy, how
often, and the thresholds that make an alert (seed 004: "High Error Rate – >5% error rate for 5
minutes", "High Response Time – >2s average response time for 10 minutes", "Resource
Utilization – >80% CPU/memory for 15 minutes").
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from pipeline.kernel.config.durations import Duration, SettingsModel

# The watch reads one-minute CloudWatch periods; a duration shorter than that cannot be judged.
MIN_BREACH_FOR_S = 60.0
# One day is the seed's "24-hour enhanced monitoring"; a week is the longest we keep polling.
MAX_WATCH_S = 7 * 86400.0
DEFAULT_PRODUCTION_WATCH_S = 86400.0


_LEAST_RESPONSE_RISE = "Compared with before: the least rise of a response time worth a warning."


class Thresholds(SettingsModel):
    """When a signal breaches, and for how long it must (seed 004's figures by default)."""

    max_5xx_ratio: float = Field(
        0.05, gt=0, le=1, description="Target 5xx / requests above this is a breach (0.05 = 5%)."
    )
    error_for_s: Duration = Field(
        300.0, alias="error_for", description="How long the 5xx ratio must stay above it."
    )
    max_avg_response_s: Duration = Field(
        2.0, alias="max_avg_response", description="Average TargetResponseTime above this."
    )
    max_p99_response_s: Duration | None = Field(
        None,
        alias="max_p99_response",
        description="p99 TargetResponseTime above this (the seed gives none: off unless set).",
    )
    response_for_s: Duration = Field(
        600.0, alias="response_for", description="How long response times must stay above."
    )
    max_cpu_percent: float = Field(
        80.0, gt=0, le=100, description="ECS service CPUUtilization above this percentage."
    )
    max_memory_percent: float = Field(
        80.0, gt=0, le=100, description="ECS service MemoryUtilization above this percentage."
    )
    utilisation_for_s: Duration = Field(
        900.0, alias="utilisation_for", description="How long CPU or memory must stay above."
    )
    regression_p: float = Field(
        0.01,
        gt=0,
        lt=0.5,
        description="Compared with before: a rank test's one-sided p under this is significant.",
    )
    regression_change: float = Field(
        0.5,
        ge=0,
        description="Compared with before: the least rise of a signal's mean that is worth a "
        "warning, relative to its mean before (0.5 = half as much again).",
    )
    regression_5xx: float = Field(
        0.005,
        ge=0,
        le=1,
        description="Compared with before: the least rise of the 5xx ratio worth a warning, "
        "whatever its mean before (0.005 = 0.5 points).",
    )
    regression_response_s: Duration = Field(
        0.1, alias="regression_response", description=_LEAST_RESPONSE_RISE
    )
    regression_utilisation: float = Field(
        10.0,
        ge=0,
        le=100,
        description="Compared with before: the least rise of CPU or memory worth a warning, "
        "in percentage points.",
    )

    @model_validator(mode="after")
    def _check(self) -> Thresholds:
        for key in ("error_for_s", "response_for_s", "utilisation_for_s"):
            if getattr(self, key) < MIN_BREACH_FOR_S:
                raise ValueError(f"{key.removesuffix('_s')} must be at least 1m")
        if self.max_avg_response_s <= 0:
            raise ValueError("max_avg_response must be more than 0s")
        if self.max_p99_response_s is not None and self.max_p99_response_s <= 0:
            raise ValueError("max_p99_response must be more than 0s")
        return self

    def with_overrides(self, overrides: ThresholdOverrides | None) -> Thresholds:
        if overrides is None:
            return self
        given: dict[str, Any] = overrides.model_dump(exclude_none=True)
        return self.model_copy(update=given)


_SAME = "As in the environment's `watch.thresholds`, for this service only."


class ThresholdOverrides(SettingsModel):
    """A service's own thresholds in one environment; unset keys take the environment's."""

    max_5xx_ratio: float | None = Field(None, gt=0, le=1, description=_SAME)
    error_for_s: Duration | None = Field(
        None, alias="error_for", ge=MIN_BREACH_FOR_S, description=_SAME
    )
    max_avg_response_s: Duration | None = Field(
        None, alias="max_avg_response", gt=0, description=_SAME
    )
    max_p99_response_s: Duration | None = Field(
        None, alias="max_p99_response", gt=0, description=_SAME
    )
    response_for_s: Duration | None = Field(
        None, alias="response_for", ge=MIN_BREACH_FOR_S, description=_SAME
    )
    max_cpu_percent: float | None = Field(None, gt=0, le=100, description=_SAME)
    max_memory_percent: float | None = Field(None, gt=0, le=100, description=_SAME)
    utilisation_for_s: Duration | None = Field(
        None, alias="utilisation_for", ge=MIN_BREACH_FOR_S, description=_SAME
    )
    regression_p: float | None = Field(None, gt=0, lt=0.5, description=_SAME)
    regression_change: float | None = Field(None, ge=0, description=_SAME)
    regression_5xx: float | None = Field(None, ge=0, le=1, description=_SAME)
    regression_response_s: Duration | None = Field(
        None, alias="regression_response", description=_SAME
    )
    regression_utilisation: float | None = Field(None, ge=0, le=100, description=_SAME)


class TargetGroupRef(SettingsModel):
    """The ALB target group a service sits behind in one environment (for its HTTP signals)."""

    load_balancer: str = Field(
        min_length=1, description="The LoadBalancer dimension, `app/<name>/<id>`."
    )
    target_group: str = Field(min_length=1, description="The target group ARN.")


class WatchSettings(SettingsModel):
    """How an environment watches the services a deploy or rollback changed."""

    period_s: Duration | None = Field(
        None,
        alias="period",
        description="How long after a successful deploy each changed service is watched; "
        "unset: 24h in an environment named `production`, off elsewhere; 0 turns it off.",
    )
    dense_every_s: Duration = Field(
        60.0, alias="dense_every", description="How often the metrics are read in the first hour."
    )
    dense_for_s: Duration = Field(
        3600.0, alias="dense_for", description="How long the denser reading lasts."
    )
    every_s: Duration = Field(
        300.0, alias="every", description="How often the metrics are read after that."
    )
    rollback: bool = Field(
        False,
        description="Inside the rollback window, roll back at once on a breach (instead of "
        "only alerting with a Roll back button).",
    )
    compare: bool = Field(
        True,
        description="Compare each signal after the deploy with the same signal over the "
        "`baseline` before it (a rank test); a significant regression under the thresholds "
        "is a warning in the thread, never a rollback.",
    )
    baseline_s: Duration = Field(
        3600.0,
        alias="baseline",
        description="How long before the deploy started the comparison reads (once), and "
        "how long after the deploy it compares with that.",
    )
    min_samples: int = Field(
        10,
        ge=5,
        description="The fewest minutes with data, on each side, that the comparison judges.",
    )
    thresholds: Thresholds = Field(
        default_factory=lambda: Thresholds.model_validate({}),
        description="When a signal breaches here (seed 004's figures by default).",
    )
    services: dict[str, ThresholdOverrides] = Field(
        default_factory=dict, description="Per service: thresholds of its own here."
    )
    target_groups: dict[str, TargetGroupRef] = Field(
        default_factory=dict,
        description="Per service: its target group here; without one only ECS signals are read.",
    )

    @model_validator(mode="after")
    def _check(self) -> WatchSettings:
        if self.period_s is not None and self.period_s > MAX_WATCH_S:
            raise ValueError("watch.period must be at most 7d")
        for key in ("dense_every_s", "every_s"):
            if not 60.0 <= getattr(self, key) <= 3600.0:
                raise ValueError(f"watch.{key.removesuffix('_s')} must be between 1m and 1h")
        if not 600.0 <= self.baseline_s <= 6 * 3600.0:
            raise ValueError("watch.baseline must be between 10m and 6h")
        return self

    def period_in(self, environment: str) -> float:
        """Seconds a deploy's services are watched in `environment` (0: not watched)."""
        if self.period_s is not None:
            return self.period_s
        return DEFAULT_PRODUCTION_WATCH_S if environment == "production" else 0.0

    def thresholds_for(self, service: str) -> Thresholds:
        return self.thresholds.with_overrides(self.services.get(service))
