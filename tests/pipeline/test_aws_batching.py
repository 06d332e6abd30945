"""BotoEcs merges concurrent reads into ECS's batched calls (issue 17, point 2), counted at a
proxy in front of a moto server, and still answers each caller alone."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.aws import BotoEcs
from pipeline.kernel.errors import NotFound
from tests.fakes.aws_proxy import EcsProxy
from tests.fakes.ecs_world import REGION, REPO, EcsWorld

CLUSTER = "skillancer-production"


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
