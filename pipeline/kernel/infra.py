"""Ports for the gates around a deploy: the image registry, database snapshots and restores,
one-off tasks (migrations), and the bucket that keeps the records.

`pipeline/aws/` implements them on ECR, RDS, ECS and S3; tests run the same adapters against
moto. Nothing here imports boto3; values are our own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Snapshot:
    id: str
    status: str
    """`creating`, `available`, `failed`, ..."""


@dataclass(frozen=True)
class DbInstance:
    id: str
    status: str
    endpoint: str | None


@dataclass(frozen=True)
class TaskRun:
    """A one-off task: `stopped` once it ended, with its exit code and why it stopped."""

    arn: str
    stopped: bool
    exit_code: int | None
    stopped_reason: str | None
    log_url: str | None = None


class Registry(Protocol):
    """The container registry. `digest` raises NotFound for a tag that is not there."""

    async def digest(self, *, region: str, image: str) -> str: ...


class Snapshots(Protocol):
    """RDS snapshots and restores. Raise NotFound for an unknown instance or snapshot,
    UpstreamError otherwise."""

    async def create(self, *, region: str, instance: str, snapshot: str) -> Snapshot: ...

    async def describe(self, *, region: str, snapshot: str) -> Snapshot: ...

    async def restore(
        self, *, region: str, snapshot: str, new_instance: str, like: str
    ) -> DbInstance:
        """A NEW instance from `snapshot`, shaped like `like`; never over an existing one."""
        ...

    async def instance(self, *, region: str, instance: str) -> DbInstance: ...


class Tasks(Protocol):
    """One-off ECS tasks (a migration)."""

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
        """Start the task; its ARN."""
        ...

    async def status(self, *, region: str, cluster: str, task: str, container: str) -> TaskRun: ...


class RecordStore(Protocol):
    """Write-once objects: `put` returns False when the key exists already."""

    async def put(self, *, region: str, bucket: str, key: str, body: bytes) -> bool: ...
