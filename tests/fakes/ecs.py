"""ECS doubles for what moto cannot stage: services that never settle, and runs held mid-rollout.

`FakeEcs` is an in-memory `Ecs` port (`pipeline.kernel.ports`). `HeldEcs` wraps
any `Ecs` (moto-backed `BotoEcs` in practice) and parks `describe` after the first
`update_service` until the test releases it, so a test can stop the bot mid-rollout.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from pipeline.kernel.errors import NotFound
from pipeline.kernel.ports import Ecs, ServiceStatus
from tests.fakes.ecs_world import REGION, REPO, EcsWorld

SIDECAR = "log-router"


class FakeEcs:
    """Services keyed by (cluster, service); task definitions as {container: image}.

    A task definition running an image whose tag is in `stuck_versions` never reaches steady
    state: one task short of desired, with the old deployment still active.
    """

    def __init__(self) -> None:
        self.task_definitions: dict[str, dict[str, str]] = {}
        self.services: dict[tuple[str, str], str] = {}
        self.stuck_versions: set[str] = set()
        self.registered: list[str] = []
        self.tags: dict[str, str] = {}
        self.updates: list[tuple[str, str]] = []
        self._revision = itertools.count(1)

    def add_service(self, env: str, service: str, version: str) -> str:
        arn = self._register(
            f"{env}-{service}", {service: f"{REPO}/{service}:{version}", SIDECAR: "fluent-bit:2"}
        )
        self.services[(f"skillancer-{env}", service)] = arn
        return arn

    def task_definition(self, env: str, service: str) -> str:
        return self.services[(f"skillancer-{env}", service)]

    def _register(self, family: str, containers: dict[str, str]) -> str:
        arn = f"arn:aws:ecs:{REGION}:123456789012:task-definition/{family}:{next(self._revision)}"
        self.task_definitions[arn] = dict(containers)
        return arn

    def _stuck(self, task_definition: str) -> bool:
        images = self.task_definitions[task_definition].values()
        return any(image.rsplit(":", 1)[-1] in self.stuck_versions for image in images)

    async def describe(self, *, region: str, cluster: str, service: str) -> ServiceStatus:
        await asyncio.sleep(0)
        try:
            td = self.services[(cluster, service)]
        except KeyError:
            raise NotFound(f"ECS has no service `{service}` in cluster `{cluster}`.") from None
        if self._stuck(td):
            return ServiceStatus(
                task_definition=td, desired=2, running=1, deployments=2, rollout_failed=False
            )
        return ServiceStatus(
            task_definition=td, desired=2, running=2, deployments=1, rollout_failed=False
        )

    async def image_of(self, *, region: str, task_definition: str, container: str) -> str:
        await asyncio.sleep(0)
        return self.task_definitions[task_definition][container]

    async def register_with_image(
        self, *, region: str, task_definition: str, container: str, image: str, deployment_id: str
    ) -> str:
        await asyncio.sleep(0)
        if deployment_id in self.tags.values():
            return next(arn for arn, tag in self.tags.items() if tag == deployment_id)
        family = task_definition.rsplit("/", 1)[-1].rsplit(":", 1)[0]
        containers = {**self.task_definitions[task_definition], container: image}
        arn = self._register(family, containers)
        self.tags[arn] = deployment_id
        self.registered.append(arn)
        return arn

    async def find_registered(
        self, *, region: str, task_definition: str, deployment_id: str
    ) -> str | None:
        await asyncio.sleep(0)
        return next((arn for arn, tag in self.tags.items() if tag == deployment_id), None)

    async def update_service(
        self,
        *,
        region: str,
        cluster: str,
        service: str,
        task_definition: str | None = None,
        desired: int | None = None,
    ) -> None:
        await asyncio.sleep(0)
        if task_definition is not None:
            self.services[(cluster, service)] = task_definition
            self.updates.append((service, task_definition))


class PassThroughEcs:
    """Delegates every call to `inner`; a test's wrapper overrides what it watches or holds."""

    def __init__(self, inner: Ecs) -> None:
        self.inner = inner

    async def describe(self, *, region: str, cluster: str, service: str) -> ServiceStatus:
        return await self.inner.describe(region=region, cluster=cluster, service=service)

    async def image_of(self, *, region: str, task_definition: str, container: str) -> str:
        return await self.inner.image_of(
            region=region, task_definition=task_definition, container=container
        )

    async def register_with_image(
        self, *, region: str, task_definition: str, container: str, image: str, deployment_id: str
    ) -> str:
        return await self.inner.register_with_image(
            region=region,
            task_definition=task_definition,
            container=container,
            image=image,
            deployment_id=deployment_id,
        )

    async def find_registered(
        self, *, region: str, task_definition: str, deployment_id: str
    ) -> str | None:
        return await self.inner.find_registered(
            region=region, task_definition=task_definition, deployment_id=deployment_id
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
        await self.inner.update_service(
            region=region,
            cluster=cluster,
            service=service,
            task_definition=task_definition,
            desired=desired,
        )


class HeldEcs(PassThroughEcs):
    """Delegates to `inner`; once a service was updated, `describe` waits for `release()`."""

    def __init__(self, inner: Ecs) -> None:
        super().__init__(inner)
        self.holding = asyncio.Event()
        self._released = asyncio.Event()
        self._updated = False

    def release(self) -> None:
        self._released.set()

    async def describe(self, *, region: str, cluster: str, service: str) -> ServiceStatus:
        if self._updated and not self._released.is_set():
            self.holding.set()
            await self._released.wait()
        return await self.inner.describe(region=region, cluster=cluster, service=service)

    async def update_service(
        self,
        *,
        region: str,
        cluster: str,
        service: str,
        task_definition: str | None = None,
        desired: int | None = None,
    ) -> None:
        await super().update_service(
            region=region,
            cluster=cluster,
            service=service,
            task_definition=task_definition,
            desired=desired,
        )
        self._updated = True


def put_version(world: EcsWorld, env: str, service: str, version: str) -> str:
    """Move a moto service to `version` (a new revision), as a deploy outside the bot would."""
    current = world.client.describe_task_definition(
        taskDefinition=world.task_definition(env, service)
    )["taskDefinition"]
    containers: list[dict[str, Any]] = [
        {**c, "image": f"{REPO}/{service}:{version}"} if c["name"] == service else c
        for c in current["containerDefinitions"]
    ]
    arn = str(
        world.client.register_task_definition(
            family=current["family"], containerDefinitions=containers
        )["taskDefinition"]["taskDefinitionArn"]
    )
    world.client.update_service(cluster=world.cluster(env), service=service, taskDefinition=arn)
    return arn


def revisions(world: EcsWorld, env: str, service: str) -> list[str]:
    """Every task-definition revision registered in moto for (env, service)."""
    out = world.client.list_task_definitions(familyPrefix=f"{env}-{service}")
    return [str(a) for a in out["taskDefinitionArns"]]
