"""ECS through boto3, off the event loop. Must not leak boto3 dicts or ClientError upward.

Endpoints and credentials follow boto3's own chain (AWS_ENDPOINT_URL works, so moto does too).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws.batching import LRU, Coalescer
from pipeline.aws.calls import AwsClients, off_loop
from pipeline.kernel.errors import NotFound, UpstreamError
from pipeline.kernel.ports import ServiceStatus

T = TypeVar("T")

log = logging.getLogger(__name__)

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


# Each revision the bot registers carries its deployment's id, so a run restarted after a crash
# finds the revision it registered before instead of registering a second one.
DEPLOYMENT_TAG = "chatops:deployment-id"
# How many revisions newer than the one a run started from it reads, looking for its own.
OWN_REVISION_SCAN = 10

# AWS error codes that mean "this identity may not do that" and "these credentials are not
# accepted"; matched on the code, never on the message.
_DENIED = frozenset(
    {"AccessDeniedException", "AccessDenied", "UnauthorizedOperation", "UnauthorizedException"}
)
_BAD_CREDENTIALS = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "ExpiredToken",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
    }
)
# What else a refused RegisterTaskDefinition may lack: tags need TagResource, roles PassRole.
_REGISTER_ALSO = " (and `ecs:TagResource` for its tags, `iam:PassRole` for its task roles)"


def refusal(exc: ClientError, *, resource: str) -> str | None:
    """The sentence for an AWS refusal of who the bot is or what it may do, else None."""
    code = exc.response.get("Error", {}).get("Code", "")
    action = f"ecs:{exc.operation_name}"
    if code in _DENIED:
        also = _REGISTER_ALSO if exc.operation_name == "RegisterTaskDefinition" else ""
        return (
            f"AWS refused `{action}` on {resource} ({code}): the bot's AWS identity lacks the "
            f"IAM permission `{action}`{also}. Ask an AWS admin to grant it; README.md "
            "('AWS') lists every permission the bot needs."
        )
    if code in _BAD_CREDENTIALS:
        return (
            f"AWS did not accept the bot's credentials for `{action}` on {resource} ({code}). "
            "Check the AWS credentials the bot runs with (README.md, 'AWS')."
        )
    return None


def _revision(arn: str) -> int:
    tail = arn.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _tagged(tags: list[dict[str, str]] | None, deployment_id: str) -> bool:
    return any(
        t.get("key") == DEPLOYMENT_TAG and t.get("value") == deployment_id for t in tags or []
    )


# DescribeServices answers for at most 10 services per call (ECS API reference).
DESCRIBE_SERVICES_MAX = 10
# Task definition revisions whose container images are remembered (a few kB at most).
IMAGES_REMEMBERED = 2048


class BotoEcs:
    """The `Ecs` port on boto3. One client per region, created once and then shared by threads."""

    def __init__(self) -> None:
        self._clients = AwsClients()
        self._services: Coalescer[tuple[str, str], str, ServiceStatus] = Coalescer(
            self._describe_batch, batch_size=DESCRIBE_SERVICES_MAX
        )
        self._images: LRU[tuple[str, str], dict[str, str]] = LRU(IMAGES_REMEMBERED)

    def _client(self, region: str) -> Any:
        return self._clients.get("ecs", region)

    async def _call(
        self,
        what: str,
        fn: Callable[[], T],
        *,
        resource: str,
        missing: str | None = None,
    ) -> T:
        """Run `fn` on a worker thread; AWS errors become NotFound or UpstreamError sentences.

        `what` is what we were doing ("update service `x`"), `resource` what it was done to,
        for a refusal ("service `x` in cluster `y` (us-east-1)").
        """
        try:
            return await off_loop(fn)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("ServiceNotFoundException", "ClusterNotFoundException"):
                raise NotFound(
                    missing or f"ECS could not find what it needed to {what} ({code})."
                ) from exc
            refused = refusal(exc, resource=resource)
            if refused is not None:
                raise UpstreamError(refused) from exc
            raise UpstreamError(f"ECS refused to {what} ({code or 'unknown error'}).") from exc
        except BotoCoreError as exc:
            raise UpstreamError(f"Could not reach ECS to {what}.") from exc

    async def describe(self, *, region: str, cluster: str, service: str) -> ServiceStatus:
        """What ECS says of `service`. Concurrent calls for one cluster are merged into
        DescribeServices calls of up to 10 services each."""
        return await self._services.get((region, cluster), service)

    async def _describe_batch(
        self, where: tuple[str, str], services: Sequence[str]
    ) -> dict[str, ServiceStatus | Exception]:
        region, cluster = where

        def describe() -> dict[str, ServiceStatus | Exception]:
            out = self._client(region).describe_services(cluster=cluster, services=list(services))
            found: dict[str, ServiceStatus | Exception] = {}
            for svc in out.get("services", []):
                if svc.get("status") != "INACTIVE":
                    # Asked for by name or by ARN: answer under both.
                    found[str(svc["serviceName"])] = _status(svc)
                    found[str(svc.get("serviceArn", svc["serviceName"]))] = _status(svc)
            return found

        shown = _services_named(services)
        found = await self._call(
            f"describe {shown} in cluster `{cluster}`",
            describe,
            resource=f"{shown} in cluster `{cluster}` ({region})",
            missing=(
                f"ECS has no cluster `{cluster}` ({region}). Check `cluster` for this "
                "environment in the config."
            ),
        )
        for name in services:
            found.setdefault(
                name,
                NotFound(
                    f"ECS has no active service `{name}` in cluster `{cluster}` ({region}). "
                    "Check `ecs_service` for this service and `cluster` for this environment "
                    "in the config."
                ),
            )
        return found

    async def image_of(self, *, region: str, task_definition: str, container: str) -> str:
        """The image of `container` in `task_definition`. A revision never changes, so each
        one's images are read from ECS once and then remembered."""
        images = self._images.get((region, task_definition))
        if images is None:
            images = await self._container_images(region, task_definition)
            if _revision(task_definition) > 0:
                self._images[(region, task_definition)] = images
        if container not in images:
            raise NotFound(
                f"Task definition `{_short(task_definition)}` has no container `{container}`. "
                "Check `container` for this service in the config."
            )
        return images[container]

    async def _container_images(self, region: str, task_definition: str) -> dict[str, str]:
        def images() -> dict[str, str]:
            td = self._client(region).describe_task_definition(taskDefinition=task_definition)
            return {
                str(c["name"]): str(c["image"])
                for c in td["taskDefinition"]["containerDefinitions"]
            }

        return await self._call(
            f"read task definition `{_short(task_definition)}`",
            images,
            resource=f"task definition `{_short(task_definition)}` ({region})",
        )

    async def register_with_image(
        self,
        *,
        region: str,
        task_definition: str,
        container: str,
        image: str,
        deployment_id: str,
    ) -> str:
        def register() -> str:
            client = self._client(region)
            out = client.describe_task_definition(taskDefinition=task_definition, include=["TAGS"])
            described = out["taskDefinition"]
            own = _own_revision(
                client,
                family=str(described["family"]),
                after=int(described.get("revision") or _revision(task_definition)),
                deployment_id=deployment_id,
            )
            if own is not None:
                log.info("reusing %s, registered for deployment %s", _short(own), deployment_id)
                return own
            accepted = frozenset(
                client.meta.service_model.operation_model(
                    "RegisterTaskDefinition"
                ).input_shape.members
            )
            tags = [t for t in out.get("tags") or [] if t.get("key") != DEPLOYMENT_TAG]
            spec = registration_spec(
                described,
                container=container,
                image=image,
                accepted=accepted,
                tags=[*tags, {"key": DEPLOYMENT_TAG, "value": deployment_id}],
            )
            new = client.register_task_definition(**spec)
            return str(new["taskDefinition"]["taskDefinitionArn"])

        try:
            return await self._call(
                f"register a new revision of `{_short(task_definition)}`",
                register,
                resource=f"task definition family `{_family(task_definition)}` ({region})",
            )
        except MissingContainer:
            raise NotFound(
                f"Task definition `{_short(task_definition)}` has no container `{container}`. "
                "Check `container` for this service in the config."
            ) from None

    async def find_registered(
        self, *, region: str, task_definition: str, deployment_id: str
    ) -> str | None:
        def find() -> str | None:
            client = self._client(region)
            out = client.describe_task_definition(taskDefinition=task_definition)
            described = out["taskDefinition"]
            return _own_revision(
                client,
                family=str(described["family"]),
                after=int(described.get("revision") or _revision(task_definition)),
                deployment_id=deployment_id,
            )

        return await self._call(
            f"look for the revision of `{_short(task_definition)}` registered for deployment "
            f"`{deployment_id}`",
            find,
            resource=f"task definition family `{_family(task_definition)}` ({region})",
        )

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

        await self._call(
            f"update service `{service}`",
            update,
            resource=f"service `{service}` in cluster `{cluster}` ({region})",
        )


def _own_revision(client: Any, *, family: str, after: int, deployment_id: str) -> str | None:
    """The newest revision of `family` after revision `after` tagged with `deployment_id`.

    Runs on a worker thread. Reads at most OWN_REVISION_SCAN revisions: a run's own revision
    is one of the newest, since the run holds its service.
    """
    listed = client.list_task_definitions(
        familyPrefix=family, status="ACTIVE", sort="DESC", maxResults=OWN_REVISION_SCAN
    )
    newer = sorted(
        (str(a) for a in listed.get("taskDefinitionArns", []) if _revision(str(a)) > after),
        key=_revision,
        reverse=True,
    )
    for arn in newer[:OWN_REVISION_SCAN]:
        out = client.describe_task_definition(taskDefinition=arn, include=["TAGS"])
        if _tagged(out.get("tags"), deployment_id):
            return arn
    return None


def _services_named(services: Sequence[str]) -> str:
    """ "service `a`", or "services `a`, `b` and `c`" (at most three named, then how many more)."""
    if len(services) == 1:
        return f"service `{services[0]}`"
    named = ", ".join(f"`{s}`" for s in services[:3])
    more = f" and {len(services) - 3} more" if len(services) > 3 else ""
    return f"services {named}{more}"


def _status(svc: dict[str, Any]) -> ServiceStatus:
    deployments = svc.get("deployments", [])
    primary: dict[str, Any] = next((d for d in deployments if d.get("status") == "PRIMARY"), {})
    failed = primary.get("rolloutState") == "FAILED"
    return ServiceStatus(
        task_definition=svc["taskDefinition"],
        desired=int(svc.get("desiredCount", 0)),
        running=int(svc.get("runningCount", 0)),
        deployments=len(deployments),
        rollout_failed=failed,
        failure_reason=primary.get("rolloutStateReason") if failed else None,
    )


def _short(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _family(arn: str) -> str:
    return _short(arn).rsplit(":", 1)[0]
