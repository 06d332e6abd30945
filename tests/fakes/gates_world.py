"""What the gates need in moto: ECR images, an RDS instance, a bucket, a network for tasks.

moto runs one-off tasks but never ends them; `finish_tasks` ends a task with an exit code the
way ECS would, for the migration tests.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import boto3
from moto.backends import get_backend

from tests.fakes.ecs_world import REGION

ACCOUNT = "123456789012"


def push_images(ecr: Any, repository: str, *tags: str) -> None:
    """Images in ECR (through the client `ecr`) for these tags, creating the repository."""
    with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
        ecr.create_repository(repositoryName=repository)
    for tag in tags:
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"digest": f"sha256:{tag.encode().hex():0<64}"[:71]},
                "layers": [],
            }
        )
        ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag=tag)


class GatesWorld:
    def __init__(self) -> None:
        self.ecr: Any = boto3.client("ecr", region_name=REGION)
        self.rds: Any = boto3.client("rds", region_name=REGION)
        self.s3: Any = boto3.client("s3", region_name=REGION)
        self.ec2: Any = boto3.client("ec2", region_name=REGION)
        vpc = self.ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
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
