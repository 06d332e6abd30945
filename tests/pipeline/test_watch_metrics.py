"""The watch's CloudWatch adapter against moto: raw one-minute series put with put_metric_data
come back as minutes, target-group and ECS series side by side, or ECS alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.aws.cloudwatch import BotoServiceMetrics
from tests.fakes.ecs_world import REGION, aws_client

LB = "app/prod-alb/50dc6c495c0c9188"
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/auth-blue/73e2d6bc24d8a067"


def _put(namespace: str, dims: dict[str, str], name: str, at: datetime, value: float) -> None:
    aws_client("cloudwatch").put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                "Timestamp": at,
                "Value": value,
            }
        ],
    )


@pytest.fixture
def start() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)


async def test_minutes_join_the_target_group_and_ecs_series(aws: None, start: datetime) -> None:
    tg = {"TargetGroup": "targetgroup/auth-blue/73e2d6bc24d8a067", "LoadBalancer": LB}
    ecs = {"ClusterName": "prod", "ServiceName": "auth-svc"}
    at = start + timedelta(minutes=2, seconds=5)
    _put("AWS/ApplicationELB", tg, "RequestCount", at, 200)
    _put("AWS/ApplicationELB", tg, "HTTPCode_Target_5XX_Count", at, 30)
    _put("AWS/ApplicationELB", tg, "TargetResponseTime", at, 0.4)
    _put("AWS/ECS", ecs, "CPUUtilization", at, 91)

    minutes = await BotoServiceMetrics().minutes(
        region=REGION,
        cluster="prod",
        service="auth-svc",
        load_balancer=LB,
        target_group=TG,
        start=start,
        end=start + timedelta(minutes=10),
    )

    assert len(minutes) == 1
    (m,) = minutes
    assert m.at == start + timedelta(minutes=2)
    assert (m.requests, m.errors_5xx, m.avg_response_s, m.cpu_percent) == (200, 30, 0.4, 91)
    assert m.memory_percent is None


async def test_without_a_target_group_only_ecs_series_are_read(aws: None, start: datetime) -> None:
    tg = {"TargetGroup": "targetgroup/auth-blue/73e2d6bc24d8a067", "LoadBalancer": LB}
    at = start + timedelta(minutes=1)
    _put("AWS/ApplicationELB", tg, "RequestCount", at, 200)
    _put("AWS/ECS", {"ClusterName": "prod", "ServiceName": "auth-svc"}, "MemoryUtilization", at, 50)

    minutes = await BotoServiceMetrics().minutes(
        region=REGION,
        cluster="prod",
        service="auth-svc",
        load_balancer=None,
        target_group=None,
        start=start,
        end=start + timedelta(minutes=10),
    )

    assert [(m.requests, m.memory_percent) for m in minutes] == [(None, 50)]


async def test_a_read_from_mid_minute_gets_the_clocks_minutes_whole(
    aws: None, start: datetime
) -> None:
    tg = {"TargetGroup": "targetgroup/auth-blue/73e2d6bc24d8a067", "LoadBalancer": LB}
    _put("AWS/ApplicationELB", tg, "RequestCount", start + timedelta(seconds=70), 100)
    _put("AWS/ApplicationELB", tg, "RequestCount", start + timedelta(seconds=100), 50)

    minutes = await BotoServiceMetrics().minutes(
        region=REGION,
        cluster="prod",
        service="auth-svc",
        load_balancer=LB,
        target_group=TG,
        start=start + timedelta(seconds=30),  # a watch that began mid-minute
        end=start + timedelta(seconds=150),
    )

    assert [(m.at, m.requests) for m in minutes] == [(start + timedelta(minutes=1), 150)]
