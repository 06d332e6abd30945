"""Ports for canary releases: the load balancer that splits traffic, and the metrics it keeps.

`pipeline/aws/` implements them on ELBv2 and CloudWatch; tests use the same adapters against
moto. Nothing here imports boto3; values are our own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class TargetHealth:
    """How many targets of a target group are healthy, and how many are anything else."""

    healthy: int
    other: int


@dataclass(frozen=True)
class MetricSums:
    """What CloudWatch says about one target group over a time range; None: no data points.

    `requests` and `errors_5xx` are sums of `RequestCount` and `HTTPCode_Target_5XX_Count`;
    `slowest_s` is the highest per-minute average of `TargetResponseTime`.
    """

    requests: float | None
    errors_5xx: float | None
    slowest_s: float | None


class LoadBalancer(Protocol):
    """An ALB listener (or listener rule) whose forward action weights target groups.

    Implementations raise NotFound for an unknown listener, rule or target group, and
    UpstreamError (after retries, throttling included) for anything else.
    """

    async def weights(
        self, *, region: str, listener: str | None, rule: str | None
    ) -> dict[str, int]:
        """Target group ARN -> weight, of the forward action."""
        ...

    async def set_weights(
        self, *, region: str, listener: str | None, rule: str | None, weights: Mapping[str, int]
    ) -> None:
        """Replace the forward action's weights (every other part of it is kept)."""
        ...

    async def target_health(self, *, region: str, target_group: str) -> TargetHealth: ...


class Metrics(Protocol):
    """CloudWatch sums for a target group. Raises UpstreamError after retries."""

    async def sums(
        self,
        *,
        region: str,
        load_balancer: str,
        target_group: str,
        start: datetime,
        end: datetime,
    ) -> MetricSums: ...


@dataclass(frozen=True)
class Minute:
    """One minute of a watched service, as CloudWatch has it; None: no data point that minute.

    `requests` and `errors_5xx` are sums; `avg_response_s` the Average and `p99_response_s`
    the p99 of `TargetResponseTime`; `cpu_percent` and `memory_percent` the ECS service's
    Average `CPUUtilization` and `MemoryUtilization`.
    """

    at: datetime
    requests: float | None = None
    errors_5xx: float | None = None
    avg_response_s: float | None = None
    p99_response_s: float | None = None
    cpu_percent: float | None = None
    memory_percent: float | None = None


class ServiceMetrics(Protocol):
    """CloudWatch series of one service, minute by minute. Raises UpstreamError (naming the
    IAM action when refused, or throttled after retries)."""

    async def minutes(
        self,
        *,
        region: str,
        cluster: str,
        service: str,
        load_balancer: str | None,
        target_group: str | None,
        start: datetime,
        end: datetime,
        p99: bool = False,
    ) -> list[Minute]:
        """The clock's minutes from the one holding `start` to `end`, oldest first (the last
        one may be partial); target-group fields None without one, and
        `p99_response_s` None unless `p99` is asked for."""
        ...
