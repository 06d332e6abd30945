"""The gates' ports on AWS: ECR image digests, RDS snapshots and restores, one-off ECS tasks,
and write-once S3 records. Must not leak boto3 dicts or ClientError upward."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from pipeline.aws.batching import Coalescer
from pipeline.aws.calls import AwsAdapter, AwsClients, call_aws
from pipeline.kernel.errors import NotFound, UpstreamError
from pipeline.kernel.infra import DbInstance, Snapshot, TaskRun

_ECR_HOST = ".dkr.ecr."


def ecr_repository(image: str) -> tuple[str, str, str] | None:
    """(registry id, repository, tag) of an ECR image reference; None for another registry."""
    host, _, rest = image.partition("/")
    if _ECR_HOST not in host or ":" not in rest:
        return None
    repository, _, tag = rest.rpartition(":")
    return host.split(".", 1)[0], repository, tag


# DescribeImages takes at most 100 image ids per call (ECR API reference).
DESCRIBE_IMAGES_MAX = 100


class BotoRegistry(AwsAdapter):
    def __init__(self, clients: AwsClients | None = None) -> None:
        super().__init__(clients)
        self._tags: Coalescer[tuple[str, str, str], str, str] = Coalescer(
            self._digests, batch_size=DESCRIBE_IMAGES_MAX
        )

    async def digest(self, *, region: str, image: str) -> str:
        """The digest of an ECR image's tag. Concurrent calls for one repository are merged
        into DescribeImages calls of up to 100 tags."""
        parsed = ecr_repository(image)
        if parsed is None:
            raise NotFound(f"`{image}` is not in ECR, so its tag cannot be checked.")
        registry, repository, tag = parsed
        return await self._tags.get((region, registry, repository), tag)

    async def _digests(
        self, where: tuple[str, str, str], tags: Sequence[str]
    ) -> dict[str, str | Exception]:
        region, registry, repository = where

        def describe(ids: Sequence[str]) -> dict[str, str | Exception]:
            out = self._clients.get("ecr", region).describe_images(
                registryId=registry,
                repositoryName=repository,
                imageIds=[{"imageTag": tag} for tag in ids],
            )
            return {
                str(tag): str(detail["imageDigest"])
                for detail in out.get("imageDetails", [])
                for tag in detail.get("imageTags", [])
            }

        def read() -> dict[str, str | Exception]:
            try:
                return describe(tags)
            except ClientError as exc:
                if _code(exc) != "ImageNotFoundException" or len(tags) == 1:
                    raise
            # One missing tag fails the whole call: ask for each tag alone to tell which.
            found: dict[str, str | Exception] = {}
            for tag in tags:
                try:
                    found.update(describe([tag]))
                except ClientError as exc:
                    if _code(exc) != "ImageNotFoundException":
                        raise
            return found

        found = await call_aws(
            read,
            doing="look the image up in ECR",
            permission="ecr:DescribeImages",
            resource=f"{repository}:{','.join(tags)}",
            missing={
                "ImageNotFoundException": f"ECR has no image `{repository}:{tags[0]}`.",
                "RepositoryNotFoundException": f"ECR has no repository `{repository}`.",
            },
        )
        for tag in tags:
            found.setdefault(tag, NotFound(f"ECR has no image `{repository}:{tag}`."))
        return found


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _snapshot(data: dict[str, Any]) -> Snapshot:
    return Snapshot(id=str(data["DBSnapshotIdentifier"]), status=str(data.get("Status", "")))


def _instance(data: dict[str, Any]) -> DbInstance:
    endpoint = data.get("Endpoint") or {}
    address = endpoint.get("Address")
    port = endpoint.get("Port")
    return DbInstance(
        id=str(data["DBInstanceIdentifier"]),
        status=str(data.get("DBInstanceStatus", "")),
        endpoint=f"{address}:{port}" if address else None,
    )


_RDS_MISSING = {
    "DBInstanceNotFound": "RDS has no such database instance; check `database.instance`.",
    "DBInstanceNotFoundFault": "RDS has no such database instance; check `database.instance`.",
    "DBSnapshotNotFound": "RDS has no such snapshot.",
    "DBSnapshotNotFoundFault": "RDS has no such snapshot.",
}


class BotoSnapshots(AwsAdapter):
    async def create(self, *, region: str, instance: str, snapshot: str) -> Snapshot:
        def create() -> Snapshot:
            client = self._clients.get("rds", region)
            try:
                out = client.create_db_snapshot(
                    DBSnapshotIdentifier=snapshot, DBInstanceIdentifier=instance
                )
                return _snapshot(out["DBSnapshot"])
            except ClientError as exc:
                # Taken already (a run resumed after a crash): use that one.
                if exc.response.get("Error", {}).get("Code") in (
                    "DBSnapshotAlreadyExists",
                    "DBSnapshotAlreadyExistsFault",
                ):
                    found = client.describe_db_snapshots(DBSnapshotIdentifier=snapshot)
                    return _snapshot(found["DBSnapshots"][0])
                raise

        return await call_aws(
            create,
            doing="snapshot the database",
            permission="rds:CreateDBSnapshot",
            resource=instance,
            missing=_RDS_MISSING,
        )

    async def describe(self, *, region: str, snapshot: str) -> Snapshot:
        def read() -> Snapshot:
            out = self._clients.get("rds", region).describe_db_snapshots(
                DBSnapshotIdentifier=snapshot
            )
            return _snapshot(out["DBSnapshots"][0])

        return await call_aws(
            read,
            doing="read the snapshot's status",
            permission="rds:DescribeDBSnapshots",
            resource=snapshot,
            missing=_RDS_MISSING,
        )

    async def restore(
        self, *, region: str, snapshot: str, new_instance: str, like: str
    ) -> DbInstance:
        def restore() -> DbInstance:
            client = self._clients.get("rds", region)
            existing = client.describe_db_instances(
                Filters=[{"Name": "db-instance-id", "Values": [new_instance]}]
            )["DBInstances"]
            if existing:
                return _instance(existing[0])
            source = client.describe_db_instances(DBInstanceIdentifier=like)["DBInstances"][0]
            out = client.restore_db_instance_from_db_snapshot(
                DBInstanceIdentifier=new_instance,
                DBSnapshotIdentifier=snapshot,
                DBInstanceClass=source["DBInstanceClass"],
            )
            return _instance(out["DBInstance"])

        return await call_aws(
            restore,
            doing="restore the snapshot to a new instance",
            permission="rds:RestoreDBInstanceFromDBSnapshot",
            resource=snapshot,
            missing=_RDS_MISSING,
        )

    async def instance(self, *, region: str, instance: str) -> DbInstance:
        def read() -> DbInstance:
            out = self._clients.get("rds", region).describe_db_instances(
                DBInstanceIdentifier=instance
            )
            return _instance(out["DBInstances"][0])

        return await call_aws(
            read,
            doing="read the database instance",
            permission="rds:DescribeDBInstances",
            resource=instance,
            missing=_RDS_MISSING,
        )


class BotoTasks(AwsAdapter):
    async def run(
        self,
        *,
        region: str,
        cluster: str,
        task_definition: str,
        container: str,
        command: Sequence[str],
        subnets: Sequence[str],
        security_groups: Sequence[str],
        assign_public_ip: bool,
        launch_type: str,
        started_by: str,
    ) -> str:
        def run() -> str:
            client = self._clients.get("ecs", region)
            # Started already (a run resumed after a crash): wait on that one.
            found = client.list_tasks(cluster=cluster, startedBy=started_by)["taskArns"]
            if found:
                return str(found[0])
            out = client.run_task(
                cluster=cluster,
                taskDefinition=task_definition,
                launchType=launch_type,
                startedBy=started_by,
                overrides={"containerOverrides": [{"name": container, "command": list(command)}]},
                networkConfiguration={
                    "awsvpcConfiguration": {
                        "subnets": list(subnets),
                        "securityGroups": list(security_groups),
                        "assignPublicIp": "ENABLED" if assign_public_ip else "DISABLED",
                    }
                },
            )
            if out.get("failures"):
                reason = out["failures"][0].get("reason", "unknown")
                raise UpstreamError(
                    "ECS could not start the migration task: `{reason}`.", reason=reason
                )
            return str(out["tasks"][0]["taskArn"])

        return await call_aws(
            run,
            doing="start the migration task",
            permission="ecs:RunTask",
            resource=task_definition,
        )

    async def status(self, *, region: str, cluster: str, task: str, container: str) -> TaskRun:
        def read() -> TaskRun:
            client = self._clients.get("ecs", region)
            out = client.describe_tasks(cluster=cluster, tasks=[task])
            data = out["tasks"][0]
            stopped = data.get("lastStatus") == "STOPPED"
            exit_code = None
            for c in data.get("containers", []):
                if c.get("name") == container and c.get("exitCode") is not None:
                    exit_code = int(c["exitCode"])
            return TaskRun(
                arn=task,
                stopped=stopped,
                exit_code=exit_code if stopped else None,
                stopped_reason=data.get("stoppedReason") if stopped else None,
                log_url=_log_url(client, region, data, container),
            )

        return await call_aws(
            read, doing="read the migration task", permission="ecs:DescribeTasks", resource=task
        )


def _log_url(client: Any, region: str, task: dict[str, Any], container: str) -> str | None:
    """The CloudWatch Logs console address of the task's container, when it logs there."""
    try:
        td = client.describe_task_definition(taskDefinition=task["taskDefinitionArn"])
    except ClientError:
        return None
    for c in td["taskDefinition"].get("containerDefinitions", []):
        options = (c.get("logConfiguration") or {}).get("options") or {}
        if c.get("name") == container and options.get("awslogs-group"):
            group = options["awslogs-group"].replace("/", "$252F")
            prefix = options.get("awslogs-stream-prefix", "")
            stream = f"{prefix}/{container}/{task['taskArn'].rsplit('/', 1)[-1]}".replace(
                "/", "$252F"
            )
            return (
                f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
                f"#logsV2:log-groups/log-group/{group}/log-events/{stream}"
            )
    return None


class BotoRecordStore(AwsAdapter):
    async def put(self, *, region: str, bucket: str, key: str, body: bytes) -> bool:
        def put() -> bool:
            try:
                self._clients.get("s3", region).put_object(
                    Bucket=bucket,
                    Key=key,
                    Body=body,
                    IfNoneMatch="*",
                    ContentType="application/json",
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in (
                    "PreconditionFailed",
                    "ConditionalRequestConflict",
                ):
                    return False
                raise
            return True

        return await call_aws(
            put, doing="write the record", permission="s3:PutObject", resource=f"{bucket}/{key}"
        )
