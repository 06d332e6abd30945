"""The gates' AWS adapters against moto: ECR digests, RDS snapshots and restores to a new
instance, one-off tasks and their exit codes, and write-once S3 records."""

from __future__ import annotations

import pytest

from pipeline.aws.gates import (
    BotoRecordStore,
    BotoRegistry,
    BotoSnapshots,
    BotoTasks,
    ecr_repository,
)
from pipeline.kernel.errors import NotFound
from tests.fakes.ecs_world import REGION, REPO, EcsWorld
from tests.fakes.gates_world import ACCOUNT, GatesWorld, finish_tasks


@pytest.fixture
def gates(aws: None) -> GatesWorld:
    return GatesWorld()


def test_an_ecr_reference_is_split_into_registry_repository_and_tag() -> None:
    assert ecr_repository(f"{REPO}/auth-svc:v1.2.3") == (ACCOUNT, "skillancer/auth-svc", "v1.2.3")
    assert ecr_repository("docker.io/library/nginx:1.27") is None


async def test_a_pushed_tag_has_a_digest_and_a_missing_one_is_not_found(gates: GatesWorld) -> None:
    gates.push("skillancer/auth-svc", "v1.2.3")
    registry = BotoRegistry()

    digest = await registry.digest(region=REGION, image=f"{REPO}/auth-svc:v1.2.3")

    assert digest.startswith("sha256:")
    with pytest.raises(NotFound, match=r"ECR has no image `skillancer/auth-svc:v9\.9\.9`"):
        await registry.digest(region=REGION, image=f"{REPO}/auth-svc:v9.9.9")


async def test_a_snapshot_is_taken_once_and_restored_to_a_new_instance(gates: GatesWorld) -> None:
    instance = gates.database()
    rds = BotoSnapshots()

    first = await rds.create(region=REGION, instance=instance, snapshot="chatops-run-1")
    again = await rds.create(region=REGION, instance=instance, snapshot="chatops-run-1")
    restored = await rds.restore(
        region=REGION, snapshot="chatops-run-1", new_instance="restore-run-1", like=instance
    )

    assert (first.id, again.id) == ("chatops-run-1", "chatops-run-1")
    assert (await rds.describe(region=REGION, snapshot="chatops-run-1")).status == "available"
    assert restored.id == "restore-run-1"
    ids = [i["DBInstanceIdentifier"] for i in gates.rds.describe_db_instances()["DBInstances"]]
    assert sorted(ids) == ["restore-run-1", instance]


async def test_a_snapshot_of_an_unknown_instance_is_not_found(gates: GatesWorld) -> None:
    with pytest.raises(NotFound, match=r"database\.instance"):
        await BotoSnapshots().create(region=REGION, instance="nope", snapshot="chatops-x")


async def test_a_task_runs_once_per_starter_and_reports_its_exit_code(gates: GatesWorld) -> None:
    ecs = EcsWorld()
    td = ecs.add_service("production", "auth-svc", "v1.3.0")
    tasks = BotoTasks()
    kwargs = {
        "region": REGION,
        "cluster": "skillancer-production",
        "task_definition": td,
        "container": "auth-svc",
        "command": ["pnpm", "prisma", "migrate", "deploy"],
        "subnets": [gates.subnet],
        "security_groups": [gates.security_group],
        "assign_public_ip": False,
        "launch_type": "FARGATE",
        "started_by": "chatops-run-1",
    }

    arn = await tasks.run(**kwargs)  # type: ignore[arg-type]
    again = await tasks.run(**kwargs)  # type: ignore[arg-type]
    running = await tasks.status(
        region=REGION, cluster="skillancer-production", task=arn, container="auth-svc"
    )
    finish_tasks("skillancer-production", 1)
    stopped = await tasks.status(
        region=REGION, cluster="skillancer-production", task=arn, container="auth-svc"
    )

    assert again == arn
    assert running.stopped is False
    assert (stopped.stopped, stopped.exit_code) == (True, 1)


async def test_records_are_written_once(gates: GatesWorld) -> None:
    bucket = gates.bucket()
    store = BotoRecordStore()

    first = await store.put(region=REGION, bucket=bucket, key="r.json", body=b'{"a": 1}')
    second = await store.put(region=REGION, bucket=bucket, key="r.json", body=b'{"a": 2}')

    assert (first, second) == (True, False)
    assert gates.objects(bucket) == {"r.json": {"a": 1}}
