"""BotoEcs merges concurrent reads into ECS's batched calls (issue 17, point 2), counted at a
proxy in front of a moto server, and still answers each caller alone."""

from __future__ import annotations

import asyncio

import boto3
import pytest

from pipeline.aws import BotoEcs
from pipeline.aws.gates import BotoRegistry
from pipeline.kernel.errors import NotFound
from tests.fakes.aws_proxy import EcsProxy
from tests.fakes.ecs_world import REGION, REPO, EcsWorld
from tests.fakes.gates_world import ACCOUNT, push_images

CLUSTER = "skillancer-production"
# The registry tests count calls with hooks on the registry's own client.
pytestmark = pytest.mark.own_aws_clients


@pytest.fixture
def estate(served_world: EcsWorld) -> list[str]:
    names = [f"svc-{i:02d}" for i in range(25)]
    for name in names:
        served_world.add_service("production", name, "v1.2.0")
    return names


async def test_twenty_five_services_described_together_take_three_describe_calls(
    estate: list[str], ecs_proxy: EcsProxy
) -> None:
    ecs = BotoEcs()

    statuses = await asyncio.gather(
        *(ecs.describe(region=REGION, cluster=CLUSTER, service=name) for name in estate)
    )

    assert ecs_proxy.calls.count("DescribeServices") == 3
    assert [s.task_definition.rsplit("/", 1)[-1] for s in statuses] == [
        f"production-{name}:1" for name in estate
    ]


async def test_an_unknown_service_in_a_batch_fails_only_its_own_caller(
    estate: list[str], ecs_proxy: EcsProxy
) -> None:
    ecs = BotoEcs()

    results = await asyncio.gather(
        ecs.describe(region=REGION, cluster=CLUSTER, service=estate[0]),
        ecs.describe(region=REGION, cluster=CLUSTER, service="no-such-svc"),
        return_exceptions=True,
    )

    assert not isinstance(results[0], BaseException)
    assert isinstance(results[1], NotFound)
    assert "`no-such-svc`" in results[1].user_message
    assert ecs_proxy.calls.count("DescribeServices") == 1


async def test_a_cancelled_caller_leaves_the_others_of_its_batch_answered(
    estate: list[str], ecs_proxy: EcsProxy
) -> None:
    ecs = BotoEcs()
    first = asyncio.ensure_future(ecs.describe(region=REGION, cluster=CLUSTER, service=estate[0]))
    second = asyncio.ensure_future(ecs.describe(region=REGION, cluster=CLUSTER, service=estate[1]))
    await asyncio.sleep(0)

    first.cancel()
    status = await second

    assert status.task_definition.endswith(f"production-{estate[1]}:1")
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_revisions_images_are_read_from_ecs_once(
    estate: list[str], served_world: EcsWorld, ecs_proxy: EcsProxy
) -> None:
    ecs = BotoEcs()
    revision = served_world.task_definition("production", estate[0])

    images = [
        await ecs.image_of(region=REGION, task_definition=revision, container=estate[0])
        for _ in range(3)
    ]

    assert images == [f"{REPO}/{estate[0]}:v1.2.0"] * 3
    assert ecs_proxy.calls.count("DescribeTaskDefinition") == 1


async def test_a_missing_tag_among_others_is_named_and_the_others_are_found(
    aws: None,
) -> None:
    ecr = boto3.client("ecr", region_name=REGION)
    push_images(ecr, "skillancer/api", "v1.2.0", "v1.3.0")
    registry = BotoRegistry()
    calls: list[str] = []
    # Counted on the registry's own client, as botocore announces each call it sends.
    registry_client = registry._clients.get("ecr", REGION)
    registry_client.meta.events.register(
        "before-call.ecr.DescribeImages", lambda **_: calls.append("DescribeImages")
    )
    image = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/skillancer/api"

    found = await asyncio.gather(
        registry.digest(region=REGION, image=f"{image}:v1.2.0"),
        registry.digest(region=REGION, image=f"{image}:v1.3.0"),
        registry.digest(region=REGION, image=f"{image}:v9.9.9"),
        return_exceptions=True,
    )

    assert all(isinstance(d, str) and d.startswith("sha256:") for d in found[:2])
    assert found[0] != found[1]
    assert isinstance(found[2], NotFound)
    assert "`skillancer/api:v9.9.9`" in found[2].user_message
    assert calls[0] == "DescribeImages"
    # ECR refuses a call naming a missing tag as a whole; each tag is then asked alone.
    assert calls == ["DescribeImages"] * 4


async def test_tags_of_one_repository_found_together_take_one_describe_images_call(
    aws: None,
) -> None:
    ecr = boto3.client("ecr", region_name=REGION)
    push_images(ecr, "skillancer/api", "v1.2.0", "v1.3.0")
    registry = BotoRegistry()
    calls: list[str] = []
    registry._clients.get("ecr", REGION).meta.events.register(
        "before-call.ecr.DescribeImages", lambda **_: calls.append("DescribeImages")
    )
    image = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/skillancer/api"

    found = await asyncio.gather(
        registry.digest(region=REGION, image=f"{image}:v1.2.0"),
        registry.digest(region=REGION, image=f"{image}:v1.3.0"),
    )

    assert len(set(found)) == 2
    assert calls == ["DescribeImages"]
