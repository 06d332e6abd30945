"""ECS clusters, task definitions and services created in moto, as the tests need them."""

from __future__ import annotations

import os
from typing import Any

import boto3

REGION = "us-east-1"
REPO = "123456789012.dkr.ecr.us-east-1.amazonaws.com/skillancer"

_clients: dict[tuple[str, str | None, str | None], Any] = {}


def aws_client(service: str, *, endpoint_url: str | None = None) -> Any:
    """A boto3 client for `service` in `REGION`, made once per worker and reused by every test.

    Making a client costs about a tenth of a second of CPU, and the worlds need several per
    test. moto's `mock_aws` answers through a hook every client has, so a client made in one
    test answers from the next test's moto. Where the environment sends boto3
    (`AWS_ENDPOINT_URL`, as the proxy tests set it) is part of the key: a client is reused only
    where a new one would go to the same place.
    """
    key = (service, endpoint_url, os.environ.get("AWS_ENDPOINT_URL"))  # noqa: TID251
    if key not in _clients:
        _clients[key] = boto3.client(service, region_name=REGION, endpoint_url=endpoint_url)  # type: ignore[call-overload]
    return _clients[key]


class EcsWorld:
    """Each (environment, service) gets a cluster `skillancer-<env>` and a running service."""

    def __init__(self, *, endpoint_url: str | None = None) -> None:
        self.client: Any = aws_client("ecs", endpoint_url=endpoint_url)
        self._clusters: set[str] = set()

    def cluster(self, env: str) -> str:
        return f"skillancer-{env}"

    def has_clusters(self, *envs: str) -> None:
        """The clusters of `envs` exist already (moto's state was restored with them)."""
        self._clusters.update(envs)

    def add_service(
        self,
        env: str,
        service: str,
        version: str,
        *,
        desired: int = 2,
        container: str | None = None,
    ) -> str:
        """An ECS service running `version` of image `container` (default: the service name)."""
        if env not in self._clusters:
            self.client.create_cluster(clusterName=self.cluster(env))
            self._clusters.add(env)
        name = container or service
        td = self.client.register_task_definition(
            family=f"{env}-{service}",
            containerDefinitions=[
                {
                    "name": name,
                    "image": f"{REPO}/{name}:{version}",
                    "memory": 512,
                    "essential": True,
                },
                {
                    "name": "log-router",
                    "image": "public.ecr.aws/aws-observability/fluent-bit:2",
                    "memory": 128,
                    "essential": False,
                },
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        self.client.create_service(
            cluster=self.cluster(env), serviceName=service, taskDefinition=td, desiredCount=desired
        )
        return str(td)

    def task_definition(self, env: str, service: str) -> str:
        svc = self.client.describe_services(cluster=self.cluster(env), services=[service])
        return str(svc["services"][0]["taskDefinition"])

    def version(self, env: str, service: str, *, container: str | None = None) -> str:
        td = self.client.describe_task_definition(taskDefinition=self.task_definition(env, service))
        for c in td["taskDefinition"]["containerDefinitions"]:
            if c["name"] == (container or service):
                return str(c["image"]).rsplit(":", 1)[1]
        raise AssertionError(f"no container {service}")

    def containers(self, task_definition: str) -> list[dict[str, Any]]:
        td = self.client.describe_task_definition(taskDefinition=task_definition)
        return list(td["taskDefinition"]["containerDefinitions"])
