"""What the gates need in moto: ECR images, an RDS instance, a bucket, a network for tasks.

moto runs one-off tasks and, left alone, moves each one a step towards STOPPED (exit code 0)
every time it is described; `tasks_run_until_ended` keeps them running instead, and
`finish_tasks` ends them with an exit code the way ECS would, for the migration tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

from moto.backends import get_backend
from moto.moto_api import state_manager

from tests.fakes.clock import FakeClock
from tests.fakes.ecs_world import REGION, aws_client

ACCOUNT = "123456789012"


def push_images(ecr: Any, repository: str, *tags: str) -> None:
    """Images in ECR (through the client `ecr`) for these tags, creating the repository."""
    with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
        ecr.create_repository(repositoryName=repository)
    for tag in tags:
        # moto digests an image from its layers: one layer of its own gives each its digest.
        layer = hashlib.sha256(f"{repository}:{tag}".encode()).hexdigest()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"digest": f"sha256:{tag.encode().hex():0<64}"[:71]},
                "layers": [{"digest": f"sha256:{layer}", "size": 1}],
            }
        )
        ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag=tag)


class GatesWorld:
    def __init__(self) -> None:
        self.ecr: Any = aws_client("ecr")
        self.rds: Any = aws_client("rds")
        self.s3: Any = aws_client("s3")
        self.ec2: Any = aws_client("ec2")
        vpc = self.ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
        # As in a default VPC; moto's awsvpc tasks also need it (their ENI's DNS name).
        self.ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        self.subnet = self.ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24")["Subnet"][
            "SubnetId"
        ]
        self.security_group = self.ec2.create_security_group(
            GroupName="migrations", Description="migrations", VpcId=vpc
        )["GroupId"]

    def push(self, repository: str, *tags: str) -> None:
        """Images in ECR for these tags (creating the repository when needed)."""
        push_images(self.ecr, repository, *tags)

    def database(self, instance: str = "skillancer-prod-db") -> str:
        self.rds.create_db_instance(
            DBInstanceIdentifier=instance,
            DBInstanceClass="db.t3.micro",
            Engine="postgres",
            MasterUsername="admin",
            MasterUserPassword="not-a-secret-1",
            AllocatedStorage=20,
        )
        return instance

    def bucket(self, name: str = "skillancer-deploy-records") -> str:
        self.s3.create_bucket(Bucket=name)
        return name

    def objects(self, bucket: str) -> dict[str, Any]:
        listed = self.s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        return {
            o["Key"]: json.loads(self.s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
            for o in listed
        }


@contextlib.contextmanager
def tasks_run_until_ended() -> Iterator[None]:
    """Within: a one-off task stays RUNNING until `finish_tasks` ends it."""
    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})
    try:
        yield
    finally:
        state_manager.unset_transition("ecs::task")


def finish_tasks(cluster: str, exit_code: int, reason: str = "Essential container exited") -> int:
    """End every running task of `cluster` with `exit_code`, as ECS would. Returns how many."""
    backend = get_backend("ecs")[ACCOUNT][REGION]
    ended = 0
    for task in list(backend.tasks.get(cluster, {}).values()):
        if task.last_status != "STOPPED":
            for container in task.containers:
                container.exitCode = exit_code
            backend.stop_task(cluster, task.task_arn, reason)
            ended += 1
    return ended


def set_snapshot_status(snapshot: str, status: str) -> None:
    """Put an RDS snapshot in `status` (moto makes every snapshot `available` at once)."""
    backend = get_backend("rds")[ACCOUNT][REGION]
    backend.database_snapshots[snapshot].status = status


def run_in_awsvpc_with_logs(ecs: Any, *, cluster: str, service: str, log_group: str) -> str:
    """Move `service` to a copy of its task definition that runs in awsvpc mode (so a one-off
    task gets a network interface in the subnet it is given) and logs to CloudWatch (so a
    task has a log link). Returns the new revision's ARN."""
    current = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
    td = ecs.describe_task_definition(taskDefinition=current["taskDefinition"])["taskDefinition"]
    containers = []
    for c in td["containerDefinitions"]:
        c = dict(c)
        c["logConfiguration"] = {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": log_group,
                "awslogs-region": REGION,
                "awslogs-stream-prefix": "ecs",
            },
        }
        containers.append(c)
    arn = ecs.register_task_definition(
        family=td["family"],
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="1024",
        containerDefinitions=containers,
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(cluster=cluster, service=service, taskDefinition=arn)
    return str(arn)


def task_network(cluster: str, task_arn: str) -> dict[str, Any]:
    """The awsvpc configuration a one-off task was started with, as ECS kept it."""
    backend = get_backend("ecs")[ACCOUNT][REGION]
    return dict(backend.tasks[cluster][task_arn].network_configuration["awsvpcConfiguration"])


class HookedClock(FakeClock):
    """A FakeClock that calls `on_sleep(seconds)` each time the bot waits, before time moves:
    where a test makes AWS move on (a task ends, a bucket appears) while the bot is away."""

    def __init__(self) -> None:
        super().__init__()
        self.on_sleep: Callable[[float], object] | None = None

    async def sleep(self, seconds: float) -> None:
        if self.on_sleep is not None:
            self.on_sleep(seconds)
        await super().sleep(seconds)
