"""AWS throttling the canary's load balancer and metrics calls: each adapter waits and tries
again (botocore's standard retries), so a shift or a reading goes through once AWS lets it;
a stage never takes a throttled reading for a pass (see pipeline/canary/gate.py).

The calls go over HTTP through tests/fakes/aws_proxy.py, which answers `Throttling` in each
protocol's own shape (ELBv2's XML, CloudWatch's JSON) before moto sees the call.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.aws.cloudwatch import BotoMetrics
from pipeline.aws.elbv2 import BotoLoadBalancer
from tests.fakes.aws_proxy import EcsProxy
from tests.fakes.canary_world import CanaryWorld
from tests.fakes.ecs_world import REGION, EcsWorld

pytestmark = pytest.mark.slow  # botocore backs off in real time (about a second)


@pytest.fixture
def canary(ecs_proxy: EcsProxy, moto_server: str) -> CanaryWorld:
    world = CanaryWorld(EcsWorld(endpoint_url=moto_server), "production", endpoint_url=moto_server)
    world.add("auth-svc", "v1.2.0")
    return world


async def test_a_throttled_weight_shift_goes_through_on_a_retry(
    canary: CanaryWorld, ecs_proxy: EcsProxy
) -> None:
    svc = canary.services["auth-svc"]
    blue, green = svc.target_groups["blue"], svc.target_groups["green"]
    ecs_proxy.fail_next("ModifyListener", "Throttling", message="Rate exceeded")

    await BotoLoadBalancer().set_weights(
        region=REGION, listener=svc.listener, rule=None, weights={blue: 95, green: 5}
    )

    assert canary.weights("auth-svc") == {"blue": 95, "green": 5}
    assert ecs_proxy.count("ModifyListener") == 2


async def test_throttled_metrics_are_read_on_a_retry_not_taken_for_no_data(
    canary: CanaryWorld, ecs_proxy: EcsProxy
) -> None:
    svc = canary.services["auth-svc"]
    now = datetime.now(UTC).replace(microsecond=0)
    canary.traffic("auth-svc", "green", requests=400, errors=3, at=now - timedelta(seconds=30))
    ecs_proxy.fail_next("GetMetricData", "ThrottlingException", message="Rate exceeded")

    sums = await BotoMetrics().sums(
        region=REGION,
        load_balancer=svc.load_balancer,
        target_group=svc.target_groups["green"],
        start=now - timedelta(minutes=5),
        end=now + timedelta(minutes=1),
    )

    assert (sums.requests, sums.errors_5xx) == (400, 3)
    assert ecs_proxy.count("GetMetricData") == 2
