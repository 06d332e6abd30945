"""BotoEcs against moto: copies task definitions faithfully and translates every AWS error."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from pipeline.aws import BotoEcs
from pipeline.aws.ecs import DEPLOYMENT_TAG, registration_spec
from pipeline.kernel.errors import NotFound, UpstreamError
from tests.fakes.ecs import revisions
from tests.fakes.ecs_world import REGION, REPO, EcsWorld

CLUSTER = "skillancer-production"
NEW_IMAGE = f"{REPO}/api-gateway:v1.3.0"
RUN = "1700000000-abc123"


@pytest.fixture
def ecs(world: EcsWorld) -> BotoEcs:
    return BotoEcs()


async def test_register_with_image_replaces_only_the_named_containers_image(
    ecs: BotoEcs, world: EcsWorld
) -> None:
    old = world.task_definition("production", "api-gateway")

    new = await ecs.register_with_image(
        region=REGION,
        task_definition=old,
        container="api-gateway",
        image=NEW_IMAGE,
        deployment_id=RUN,
    )

    assert new != old
    assert new.endswith("task-definition/production-api-gateway:2")
    before = {c["name"]: c for c in world.containers(old)}
    after = {c["name"]: c for c in world.containers(new)}
    assert after["api-gateway"]["image"] == NEW_IMAGE
    assert after["log-router"] == before["log-router"]
    assert {k: v for k, v in after["api-gateway"].items() if k != "image"} == {
        k: v for k, v in before["api-gateway"].items() if k != "image"
    }


async def test_register_with_image_leaves_the_running_service_alone(
    ecs: BotoEcs, world: EcsWorld
) -> None:
    old = world.task_definition("production", "api-gateway")

    await ecs.register_with_image(
        region=REGION,
        task_definition=old,
        container="api-gateway",
        image=NEW_IMAGE,
        deployment_id=RUN,
    )

    assert world.task_definition("production", "api-gateway") == old


async def test_register_with_image_refuses_a_container_the_task_definition_lacks(
    ecs: BotoEcs, world: EcsWorld
) -> None:
    old = world.task_definition("production", "api-gateway")

    with pytest.raises(NotFound, match="has no container `gateway`"):
        await ecs.register_with_image(
            region=REGION,
            task_definition=old,
            container="gateway",
            image=NEW_IMAGE,
            deployment_id=RUN,
        )

    assert len(world.client.list_task_definitions()["taskDefinitionArns"]) == 6


def test_registration_spec_strips_the_fields_aws_returns_but_will_not_accept() -> None:
    described = {
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/api:7",
        "family": "api",
        "revision": 7,
        "status": "ACTIVE",
        "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.logging-driver.awslogs"}],
        "compatibilities": ["EC2", "FARGATE"],
        "registeredAt": datetime(2026, 1, 1, tzinfo=UTC),
        "registeredBy": "arn:aws:iam::1:user/ci",
        "deregisteredAt": datetime(2026, 1, 2, tzinfo=UTC),
        "someFutureReadOnlyField": True,
        "cpu": "256",
        "memory": "512",
        "networkMode": "awsvpc",
        "containerDefinitions": [
            {"name": "api", "image": "repo/api:v1"},
            {"name": "log-router", "image": "fluent-bit:2"},
        ],
    }

    spec = registration_spec(
        described,
        container="api",
        image="repo/api:v2",
        accepted=frozenset({"family", "cpu", "memory", "networkMode", "containerDefinitions"}),
        tags=[{"key": "team", "value": "platform"}],
    )

    assert spec == {
        "family": "api",
        "cpu": "256",
        "memory": "512",
        "networkMode": "awsvpc",
        "containerDefinitions": [
            {"name": "api", "image": "repo/api:v2"},
            {"name": "log-router", "image": "fluent-bit:2"},
        ],
        "tags": [{"key": "team", "value": "platform"}],
    }


async def test_describe_reports_the_revision_and_task_counts(ecs: BotoEcs, world: EcsWorld) -> None:
    status = await ecs.describe(region=REGION, cluster=CLUSTER, service="api-gateway")

    assert status.task_definition == world.task_definition("production", "api-gateway")
    assert (status.desired, status.running, status.deployments) == (2, 2, 1)
    assert status.runs(status.task_definition)
    assert not status.rollout_failed


async def test_image_of_reads_the_containers_image(ecs: BotoEcs, world: EcsWorld) -> None:
    td = world.task_definition("production", "auth-svc")

    image = await ecs.image_of(region=REGION, task_definition=td, container="auth-svc")

    assert image == f"{REPO}/auth-svc:v1.2.0"


async def test_describe_of_a_missing_service_says_which_service_and_cluster(
    ecs: BotoEcs, world: EcsWorld
) -> None:
    with pytest.raises(NotFound) as caught:
        await ecs.describe(region=REGION, cluster=CLUSTER, service="payments")

    assert caught.value.user_message == (
        f"ECS has no active service `payments` in cluster `{CLUSTER}` ({REGION}). "
        "Check `ecs_service` for this service and `cluster` for this environment in the config."
    )


async def test_describe_in_a_missing_cluster_is_not_found_too(
    ecs: BotoEcs, world: EcsWorld
) -> None:
    with pytest.raises(NotFound, match="cluster `skillancer-qa`"):
        await ecs.describe(region=REGION, cluster="skillancer-qa", service="api-gateway")


async def test_aws_errors_become_upstream_errors_without_the_raw_body(
    ecs: BotoEcs, world: EcsWorld
) -> None:
    with pytest.raises(UpstreamError) as caught:
        await ecs.update_service(
            region=REGION,
            cluster=CLUSTER,
            service="api-gateway",
            task_definition="production-api-gateway:99",
        )

    assert caught.value.user_message == (
        "ECS refused to update service `api-gateway` (ClientException)."
    )
    assert isinstance(caught.value.__cause__, ClientError)


async def test_reading_a_missing_task_definition_is_an_upstream_error(
    ecs: BotoEcs, world: EcsWorld
) -> None:
    with pytest.raises(UpstreamError, match="read task definition `nothing:1`"):
        await ecs.image_of(region=REGION, task_definition="nothing:1", container="api-gateway")


async def test_image_of_a_container_the_task_definition_lacks_names_the_config_key(
    ecs: BotoEcs, world: EcsWorld
) -> None:
    td = world.task_definition("production", "auth-svc")

    with pytest.raises(NotFound, match="Check `container` for this service"):
        await ecs.image_of(region=REGION, task_definition=td, container="auth")


async def test_a_revision_is_tagged_with_its_deployment_and_registered_once_per_deployment(
    ecs: BotoEcs, world: EcsWorld
) -> None:
    """A run restarted after a crash in RegisterTaskDefinition gets its own revision back."""
    old = world.task_definition("production", "api-gateway")

    first = await ecs.register_with_image(
        region=REGION,
        task_definition=old,
        container="api-gateway",
        image=NEW_IMAGE,
        deployment_id=RUN,
    )
    again = await ecs.register_with_image(
        region=REGION,
        task_definition=old,
        container="api-gateway",
        image=NEW_IMAGE,
        deployment_id=RUN,
    )

    assert again == first
    assert revisions(world, "production", "api-gateway") == [old, first]
    tags = world.client.describe_task_definition(taskDefinition=first, include=["TAGS"])["tags"]
    assert {"key": DEPLOYMENT_TAG, "value": RUN} in tags


async def test_find_registered_sees_only_the_runs_own_revision_and_registers_nothing(
    ecs: BotoEcs, world: EcsWorld
) -> None:
    old = world.task_definition("production", "api-gateway")
    before = await ecs.find_registered(region=REGION, task_definition=old, deployment_id=RUN)
    other = await ecs.register_with_image(
        region=REGION,
        task_definition=old,
        container="api-gateway",
        image=NEW_IMAGE,
        deployment_id="1600000000-other",
    )
    own = await ecs.register_with_image(
        region=REGION,
        task_definition=old,
        container="api-gateway",
        image=NEW_IMAGE,
        deployment_id=RUN,
    )

    found = await ecs.find_registered(region=REGION, task_definition=old, deployment_id=RUN)

    assert before is None
    assert found == own
    assert revisions(world, "production", "api-gateway") == [old, other, own]


async def test_a_new_revision_keeps_other_tags_but_not_the_previous_deployments_id(
    ecs: BotoEcs, world: EcsWorld
) -> None:
    old = world.task_definition("production", "api-gateway")
    earlier = await ecs.register_with_image(
        region=REGION,
        task_definition=old,
        container="api-gateway",
        image=NEW_IMAGE,
        deployment_id="1600000000-earlier",
    )
    world.client.tag_resource(resourceArn=earlier, tags=[{"key": "team", "value": "core"}])

    new = await ecs.register_with_image(
        region=REGION,
        task_definition=earlier,
        container="api-gateway",
        image=NEW_IMAGE,
        deployment_id=RUN,
    )

    assert new != earlier
    tags = world.client.describe_task_definition(taskDefinition=new, include=["TAGS"])["tags"]
    assert sorted((t["key"], t["value"]) for t in tags) == [
        (DEPLOYMENT_TAG, RUN),
        ("team", "core"),
    ]
