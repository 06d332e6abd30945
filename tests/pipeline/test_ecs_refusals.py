"""AWS refusals, as AWS sends them (through a proxy in front of moto), become sentences that
name the action, the resource and the IAM permission."""

from __future__ import annotations

import pytest

from pipeline.aws import BotoEcs
from pipeline.kernel.errors import UpstreamError
from tests.fakes.aws_proxy import EcsProxy
from tests.fakes.ecs_world import REGION, REPO, EcsWorld

CLUSTER = "skillancer-staging"


async def test_a_denied_describe_names_the_action_the_service_and_the_permission(
    ecs_proxy: EcsProxy, served_world: EcsWorld
) -> None:
    ecs_proxy.fail_next("DescribeServices", "AccessDeniedException")

    with pytest.raises(UpstreamError) as caught:
        await BotoEcs().describe(region=REGION, cluster=CLUSTER, service="api-gateway")

    assert caught.value.user_message == (
        "AWS refused `ecs:DescribeServices` on service `api-gateway` in cluster "
        f"`{CLUSTER}` ({REGION}) (AccessDeniedException): the bot's AWS identity lacks the IAM "
        "permission `ecs:DescribeServices`. Ask an AWS admin to grant it; README.md ('AWS') "
        "lists every permission the bot needs."
    )
    assert "injected" not in caught.value.user_message


async def test_a_denied_registration_also_names_tag_resource_and_pass_role(
    ecs_proxy: EcsProxy, served_world: EcsWorld
) -> None:
    ecs_proxy.fail_next("RegisterTaskDefinition", "AccessDeniedException")
    old = served_world.task_definition("staging", "api-gateway")

    with pytest.raises(UpstreamError) as caught:
        await BotoEcs().register_with_image(
            region=REGION,
            task_definition=old,
            container="api-gateway",
            image=f"{REPO}/api-gateway:v1.4.0",
            deployment_id="1700000000-abc123",
        )

    said = caught.value.user_message
    assert "AWS refused `ecs:RegisterTaskDefinition` on task definition family " in said
    assert "`staging-api-gateway` (us-east-1)" in said
    assert "`ecs:TagResource`" in said
    assert "`iam:PassRole`" in said


async def test_a_denied_update_names_update_service(
    ecs_proxy: EcsProxy, served_world: EcsWorld
) -> None:
    ecs_proxy.fail_next("UpdateService", "AccessDeniedException")
    current = served_world.task_definition("staging", "api-gateway")

    with pytest.raises(UpstreamError, match="lacks the IAM permission `ecs:UpdateService`"):
        await BotoEcs().update_service(
            region=REGION, cluster=CLUSTER, service="api-gateway", task_definition=current
        )


async def test_expired_credentials_say_to_check_the_credentials(
    ecs_proxy: EcsProxy, served_world: EcsWorld
) -> None:
    ecs_proxy.fail_next("DescribeServices", "ExpiredTokenException")

    with pytest.raises(UpstreamError) as caught:
        await BotoEcs().describe(region=REGION, cluster=CLUSTER, service="api-gateway")

    assert "AWS did not accept the bot's credentials for `ecs:DescribeServices`" in (
        caught.value.user_message
    )
