"""The demo services' CloudWatch figures, ticked at given times against moto in this process
(no server, no real time): every service's target group and ECS utilisation, and a version
that starts failing after its deploy. Read back as the watch reads them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import boto3
import pytest

from pipeline.aws.cloudwatch import BotoServiceMetrics
from pipeline.kernel.traffic import Minute
from sandbox.aws import SEEDS, Canary, Cluster, EcsService, Estate, LocalAws, canary_arns
from sandbox.services import (
    CPU_PERCENT,
    ERROR_SHARE,
    AlbTraffic,
    EcsVersions,
    Mode,
    _load_balancer,
)

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
PRODUCTION = Cluster("production", "sandbox-production", "us-east-1")
API = EcsService("api-gateway", "api-gateway", "api-gateway", "sandbox/api-gateway")
AUTH = EcsService("auth-svc", "auth-svc", "auth-svc", "sandbox/auth-svc")


class InProcessAws:
    """What `AlbTraffic` asks of `LocalAws`: clients, here on moto's in-process backends."""

    def client(self, service: str, region: str) -> Any:
        return boto3.client(service, region_name=region)  # type: ignore[call-overload]


@pytest.fixture
def estate(aws: None) -> Estate:
    estate = Estate((PRODUCTION,), (API,), {"production": "v1.2.0"})
    for seed in SEEDS:
        seed(estate, InProcessAws().client)
    return estate


def deploy(
    estate: Estate, version: str, *, service: EcsService = API, ecs_service: str | None = None
) -> None:
    """What a rolling deploy leaves in ECS: the service on a task definition of `version`."""
    ecs = boto3.client("ecs", region_name=PRODUCTION.region)
    arn = ecs.register_task_definition(
        family=estate.family(PRODUCTION, service),
        containerDefinitions=[
            {"name": service.container, "image": f"{service.repository}:{version}", "memory": 512}
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(
        cluster=PRODUCTION.name,
        service=ecs_service or service.ecs_service,
        taskDefinition=arn,
        desiredCount=2,
    )


async def minute(
    traffic: AlbTraffic, at: datetime, *, group: tuple[str, str] | None = None
) -> Minute:
    """The minute starting at `at` of api-gateway (or of `group`: its load balancer and
    target group), as the watch reads it."""
    if group is None:
        [own] = traffic.services
        group = (own.load_balancer, own.target_group)
    [read] = await BotoServiceMetrics().minutes(
        region=PRODUCTION.region,
        cluster=PRODUCTION.name,
        service=API.ecs_service,
        load_balancer=group[0],
        target_group=group[1],
        start=at,
        end=at + timedelta(minutes=1),
    )
    return read


async def test_a_version_failing_after_its_deploy_errs_once_it_has_taken_the_traffic_a_while(
    estate: Estate,
) -> None:
    faults = {("api-gateway", "v1.3.0"): Mode.FAILS_AFTER_DEPLOY}
    aws = cast(LocalAws, InProcessAws())
    traffic = AlbTraffic(
        aws,
        estate,
        EcsVersions(aws, estate),
        (),
        mode_of=lambda s, v: faults.get((s, v or ""), Mode.HEALTHY),
    )

    traffic.tick(T0)
    deploy(estate, "v1.3.0")
    traffic.tick(T0 + timedelta(minutes=1))  # the new version takes all the traffic
    traffic.tick(T0 + timedelta(minutes=2))  # a minute later
    deploy(estate, "v1.2.0")  # rolled back
    traffic.tick(T0 + timedelta(minutes=3))

    before, deployed, failing, rolled_back = [
        await minute(traffic, T0 + timedelta(minutes=m)) for m in range(4)
    ]
    assert before.requests == deployed.requests == failing.requests
    assert not before.errors_5xx  # no HTTPCode_Target_5XX_Count: no 5xx
    assert not deployed.errors_5xx
    assert failing.errors_5xx == pytest.approx(ERROR_SHARE * (failing.requests or 0))
    assert not rolled_back.errors_5xx
    assert (failing.cpu_percent, failing.avg_response_s) == (CPU_PERCENT, 0.05)
    assert failing.memory_percent is not None


async def test_between_service_ticks_only_the_canaries_are_reported(estate: Estate) -> None:
    aws = cast(LocalAws, InProcessAws())
    traffic = AlbTraffic(
        aws, estate, EcsVersions(aws, estate), (), mode_of=lambda s, v: Mode.HEALTHY
    )

    traffic.tick(T0)
    traffic.tick(T0 + timedelta(seconds=1))

    assert (await minute(traffic, T0)).requests == 1000  # 100 a second, for 10 s, once


def weigh(listener: str, groups: Mapping[str, str], *, blue: int, green: int) -> None:
    """The canary's listener forwarding `blue` and `green` percent, as a stage sets it."""
    boto3.client("elbv2", region_name=PRODUCTION.region).modify_listener(
        ListenerArn=listener,
        DefaultActions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": groups["blue"], "Weight": blue},
                        {"TargetGroupArn": groups["green"], "Weight": green},
                    ]
                },
            }
        ],
    )


async def test_a_canary_failing_after_its_deploy_is_healthy_until_it_takes_all_the_traffic(
    aws: None,
) -> None:
    estate = Estate(
        (PRODUCTION,), (AUTH,), {"production": "v1.2.0"}, (Canary("production", "auth-svc"),)
    )
    for seed in SEEDS:
        seed(estate, InProcessAws().client)
    [arns] = canary_arns(estate, InProcessAws().client)
    client = cast(LocalAws, InProcessAws())
    traffic = AlbTraffic(
        client,
        estate,
        EcsVersions(client, estate, [arns]),
        [arns],
        mode_of=lambda s, v: Mode.FAILS_AFTER_DEPLOY if v == "v1.3.0" else Mode.HEALTHY,
    )
    deploy(estate, "v1.3.0", service=AUTH, ecs_service="auth-svc-green")
    green = (_load_balancer(arns.listener), arns.target_groups["green"])

    weigh(arns.listener, arns.target_groups, blue=50, green=50)
    traffic.tick(T0)
    traffic.tick(T0 + timedelta(minutes=1))  # half the traffic for a minute: still healthy
    weigh(arns.listener, arns.target_groups, blue=0, green=100)
    traffic.tick(T0 + timedelta(minutes=2))
    traffic.tick(T0 + timedelta(minutes=3))

    half, later, full, failing = [
        await minute(traffic, T0 + timedelta(minutes=m), group=green) for m in range(4)
    ]
    assert (half.requests, full.requests) == (50, 100)
    assert not half.errors_5xx
    assert not later.errors_5xx
    assert not full.errors_5xx
    assert failing.errors_5xx == ERROR_SHARE * 100


async def test_on_virtual_time_a_jump_reports_every_tick_it_passed_at_its_own_time(
    estate: Estate,
) -> None:
    faults = {("api-gateway", "v1.3.0"): Mode.FAILS_AFTER_DEPLOY}
    aws = cast(LocalAws, InProcessAws())
    traffic = AlbTraffic(
        aws,
        estate,
        EcsVersions(aws, estate),
        (),
        mode_of=lambda s, v: faults.get((s, v or ""), Mode.HEALTHY),
    )
    deploy(estate, "v1.3.0")

    traffic.catch_up(T0)  # the first tick
    traffic.catch_up(T0 + timedelta(minutes=2))  # the clock jumped two minutes
    traffic.catch_up(T0 + timedelta(minutes=2, seconds=0.5))  # no whole tick more

    first, second = [await minute(traffic, T0 + timedelta(minutes=m)) for m in range(2)]
    # Ticks at 0, 10, ... 50 s: six of 1000 requests; erring from 20 s after taking it all.
    assert first.requests == second.requests == 6000
    assert first.errors_5xx == pytest.approx(4 * ERROR_SHARE * 1000)
    assert second.errors_5xx == pytest.approx(6 * ERROR_SHARE * 1000)
