"""The ELBv2 and CloudWatch adapters against moto: weights read and shifted on a listener and on
a listener rule, target health, raw metric sums, and clear errors for what does not exist."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.aws.cloudwatch import BotoMetrics
from pipeline.aws.elbv2 import BotoLoadBalancer
from pipeline.kernel.errors import NotFound
from tests.fakes.canary_world import CanaryWorld
from tests.fakes.ecs_world import REGION, EcsWorld


@pytest.fixture
def canary(aws: None) -> CanaryWorld:
    world = CanaryWorld(EcsWorld(), "production")
    world.add("auth-svc", "v1.2.0")
    return world


async def test_weights_are_read_and_shifted_on_a_listener(canary: CanaryWorld) -> None:
    svc = canary.services["auth-svc"]
    lb = BotoLoadBalancer()
    blue, green = svc.target_groups["blue"], svc.target_groups["green"]

    before = await lb.weights(region=REGION, listener=svc.listener, rule=None)
    await lb.set_weights(
        region=REGION, listener=svc.listener, rule=None, weights={blue: 95, green: 5}
    )

    assert before == {blue: 100, green: 0}
    assert canary.weights("auth-svc") == {"blue": 95, "green": 5}


async def test_weights_are_shifted_on_a_listener_rule_keeping_its_conditions(
    canary: CanaryWorld,
) -> None:
    svc = canary.services["auth-svc"]
    blue, green = svc.target_groups["blue"], svc.target_groups["green"]
    rule = canary.elb.create_rule(
        ListenerArn=svc.listener,
        Priority=10,
        Conditions=[{"Field": "path-pattern", "Values": ["/auth/*"]}],
        Actions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": blue, "Weight": 100},
                        {"TargetGroupArn": green, "Weight": 0},
                    ]
                },
            }
        ],
    )["Rules"][0]["RuleArn"]
    lb = BotoLoadBalancer()

    await lb.set_weights(region=REGION, listener=None, rule=rule, weights={blue: 50, green: 50})

    assert await lb.weights(region=REGION, listener=None, rule=rule) == {blue: 50, green: 50}
    described = canary.elb.describe_rules(RuleArns=[rule])["Rules"][0]
    assert described["Conditions"][0]["Values"] == ["/auth/*"]


async def test_an_unknown_listener_is_not_found_with_the_key_to_check(canary: CanaryWorld) -> None:
    missing = canary.services["auth-svc"].listener[:-4] + "dead"

    with pytest.raises(NotFound, match=r"canary\.\*\.listener"):
        await BotoLoadBalancer().weights(region=REGION, listener=missing, rule=None)


async def test_target_health_counts_healthy_targets(canary: CanaryWorld) -> None:
    svc = canary.services["auth-svc"]
    lb = BotoLoadBalancer()

    blue = await lb.target_health(region=REGION, target_group=svc.target_groups["blue"])
    green = await lb.target_health(region=REGION, target_group=svc.target_groups["green"])

    assert (blue.healthy, blue.other) == (2, 0)
    assert (green.healthy, green.other) == (0, 0)


async def test_metric_sums_come_from_the_raw_series(canary: CanaryWorld) -> None:
    svc = canary.services["auth-svc"]
    now = datetime.now(UTC)
    canary.traffic("auth-svc", "green", requests=300, errors=2, at=now - timedelta(minutes=2))
    canary.traffic("auth-svc", "green", requests=200, errors=8, at=now - timedelta(minutes=1))
    canary.traffic("auth-svc", "blue", requests=900, errors=0, at=now - timedelta(minutes=1))
    metrics = BotoMetrics()

    green = await metrics.sums(
        region=REGION,
        load_balancer=svc.load_balancer,
        target_group=svc.target_groups["green"],
        start=now - timedelta(minutes=5),
        end=now + timedelta(minutes=1),
    )
    blue = await metrics.sums(
        region=REGION,
        load_balancer=svc.load_balancer,
        target_group=svc.target_groups["blue"],
        start=now - timedelta(minutes=5),
        end=now + timedelta(minutes=1),
    )

    assert (green.requests, green.errors_5xx) == (500.0, 10.0)
    assert (blue.requests, blue.errors_5xx) == (900.0, 0.0)


async def test_no_data_is_none_not_zero(canary: CanaryWorld) -> None:
    svc = canary.services["auth-svc"]
    now = datetime.now(UTC)

    sums = await BotoMetrics().sums(
        region=REGION,
        load_balancer=svc.load_balancer,
        target_group=svc.target_groups["green"],
        start=now - timedelta(minutes=5),
        end=now,
    )

    assert (sums.requests, sums.errors_5xx, sums.slowest_s) == (None, None, None)
