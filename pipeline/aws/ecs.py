"""ECS through boto3, off the event loop. Must not leak boto3 dicts or ClientError upward.

Endpoints and credentials follow boto3's own chain (AWS_ENDPOINT_URL works, so moto does too).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.kernel.errors import NotFound, UpstreamError
from pipeline.kernel.ports import ServiceStatus

T = TypeVar("T")

# Fields describe_task_definition returns that register_task_definition rejects. Anything else
# the register call does not know (new read-only fields AWS adds) is dropped too: see
# `registration_spec`.
_READ_ONLY_TASK_DEF_FIELDS = frozenset(
    {
        "taskDefinitionArn",
        "revision",
        "status",
        "requiresAttributes",
        "compatibilities",
        "registeredAt",
        "registeredBy",
        "deregisteredAt",
    }
)


class MissingContainer(LookupError):
    """The task definition has no container of that name (raised on the worker thread)."""


def registration_spec(
    described: dict[str, Any],
    *,
    container: str,
    image: str,
    accepted: frozenset[str] | None = None,
    tags: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """The register_task_definition arguments that copy `described` with one image replaced.

    Read-only fields are stripped, and so is any key outside `accepted` (the operation's input
    members) when given. Raises MissingContainer when no container is called `container`.
    """
    if not any(c.get("name") == container for c in described.get("containerDefinitions", [])):
        raise MissingContainer(container)
    spec = {
        k: v
        for k, v in described.items()
        if k not in _READ_ONLY_TASK_DEF_FIELDS and (accepted is None or k in accepted)
    }
    spec["containerDefinitions"] = [
        {**c, "image": image} if c["name"] == container else c
        for c in described["containerDefinitions"]
    ]
    if tags:
        spec["tags"] = tags
    return spec


_BOTO_CONFIG = BotoConfig(
    connect_timeout=10, read_timeout=30, retries={"max_attempts": 5, "mode": "standard"}
)


class BotoEcs:
    """The `Ecs` port on boto3. One client per region, created once and then shared by threads."""

    def __init__(self) -> None:
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _client(self, region: str) -> Any:
        with self._lock:
            if region not in self._clients:
                # boto3.client() is not thread-safe; a client is once created.
                self._clients[region] = boto3.session.Session().client(
                    "ecs", region_name=region, config=_BOTO_CONFIG
                )
            return self._clients[region]

    async def _call(self, what: str, fn: Callable[[], T], *, missing: str | None = None) -> T:
        try:
            return await asyncio.to_thread(fn)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("ServiceNotFoundException", "ClusterNotFoundException"):
                raise NotFound(
                    missing or f"ECS could not find what it needed to {what} ({code})."
                ) from exc
            raise UpstreamError(f"ECS refused to {what} ({code or 'unknown error'}).") from exc
        except BotoCoreError as exc:
            raise UpstreamError(f"Could not reach ECS to {what}.") from exc

    async def describe(self, *, region: str, cluster: str, service: str) -> ServiceStatus:
        def describe() -> ServiceStatus:
            out = self._client(region).describe_services(cluster=cluster, services=[service])
            found = [s for s in out.get("services", []) if s.get("status") != "INACTIVE"]
            if not found:
                raise ClientError(
                    {"Error": {"Code": "ServiceNotFoundException", "Message": ""}},
                    "DescribeServices",
                )
            svc = found[0]
            deployments = svc.get("deployments", [])
            primary: dict[str, Any] = next(
                (d for d in deployments if d.get("status") == "PRIMARY"), {}
            )
            failed = primary.get("rolloutState") == "FAILED"
            return ServiceStatus(
                task_definition=svc["taskDefinition"],
                desired=int(svc.get("desiredCount", 0)),
                running=int(svc.get("runningCount", 0)),
                deployments=len(deployments),
                rollout_failed=failed,
                failure_reason=primary.get("rolloutStateReason") if failed else None,
            )

        return await self._call(
            f"describe service `{service}` in cluster `{cluster}`",
            describe,
            missing=(
                f"ECS has no active service `{service}` in cluster `{cluster}` ({region}). "
                "Check `ecs_service` for this service and `cluster` for this environment "
                "in the config."
            ),
        )

    async def image_of(self, *, region: str, task_definition: str, container: str) -> str:
        def image() -> str:
            td = self._client(region).describe_task_definition(taskDefinition=task_definition)
            for c in td["taskDefinition"]["containerDefinitions"]:
                if c["name"] == container:
                    return str(c["image"])
            raise MissingContainer(container)

        try:
            return await self._call(f"read task definition `{_short(task_definition)}`", image)
        except MissingContainer:
            raise NotFound(
                f"Task definition `{_short(task_definition)}` has no container `{container}`. "
                "Check `container` for this service in the config."
            ) from None

    async def register_with_image(
        self, *, region: str, task_definition: str, container: str, image: str
    ) -> str:
        def register() -> str:
            client = self._client(region)
            out = client.describe_task_definition(taskDefinition=task_definition, include=["TAGS"])
            accepted = frozenset(
                client.meta.service_model.operation_model(
                    "RegisterTaskDefinition"
                ).input_shape.members
            )
            spec = registration_spec(
                out["taskDefinition"],
                container=container,
                image=image,
                accepted=accepted,
                tags=out.get("tags"),
            )
            new = client.register_task_definition(**spec)
            return str(new["taskDefinition"]["taskDefinitionArn"])

        try:
            return await self._call(
                f"register a new revision of `{_short(task_definition)}`", register
            )
        except MissingContainer:
            raise NotFound(
                f"Task definition `{_short(task_definition)}` has no container `{container}`. "
                "Check `container` for this service in the config."
            ) from None

    async def update_service(
        self,
        *,
        region: str,
        cluster: str,
        service: str,
        task_definition: str | None = None,
        desired: int | None = None,
    ) -> None:
        def update() -> None:
            kwargs: dict[str, Any] = {"cluster": cluster, "service": service}
            if task_definition is not None:
                kwargs["taskDefinition"] = task_definition
            if desired is not None:
                kwargs["desiredCount"] = desired
            self._client(region).update_service(**kwargs)

        await self._call(f"update service `{service}`", update)


def _short(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]
