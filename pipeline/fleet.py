"""The fleet: what each service runs now, read from ECS and, for a canary, its listener.

A canary service is a blue/green pair of ECS services behind a weighted listener; what it runs
is what its live colour (the one with the larger weight) runs. Reads only: nothing here
registers, moves or scales anything (that is `pipeline/steps.py` and the strategies).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.kernel.config import Environment, Service
from pipeline.kernel.config.canary import COLOURS, CanaryTarget
from pipeline.kernel.errors import NotFound
from pipeline.kernel.ports import Ecs, ServiceStatus
from pipeline.kernel.traffic import LoadBalancer

__all__ = ["Fleet", "RunningVersion", "blue_green", "version_of"]


def version_of(image: str) -> str | None:
    """The tag of an image reference (`repo/name:v1.2.3` -> `v1.2.3`), None when untagged."""
    name = image.rsplit("/", 1)[-1]
    if "@" in name or ":" not in name:
        return None
    return name.rsplit(":", 1)[1]


@dataclass(frozen=True)
class RunningVersion:
    service: str
    task_definition: str
    image: str

    @property
    def version(self) -> str | None:
        return version_of(self.image)


def blue_green(env: Environment, svc: Service) -> CanaryTarget:
    """The blue/green setup of a canary service in `env` (a RuntimeError for another one)."""
    canary = svc.canary_in(env.name)
    if canary is None:
        raise RuntimeError(f"{svc.name} is not a canary in {env.name}.")
    return canary


class Fleet:
    """What ECS runs for each service now (for a canary: its live colour). Reads only.

    Raises NotFound for a service, listener or target group AWS does not know, and
    UpstreamError when AWS fails.
    """

    def __init__(self, *, ecs: Ecs, load_balancer: LoadBalancer) -> None:
        self._ecs = ecs
        self._lb = load_balancer

    async def running_version(self, env: Environment, service: Service) -> RunningVersion:
        """The task definition and image `service` runs in `env` (a canary's live colour)."""
        if service.canary_in(env.name) is not None:
            td, image, _ = await self._live_version(env, service)
            return RunningVersion(service.name, td, image)
        return await self.version_on(env, service, service.ecs_service)

    async def service_state(
        self, env: Environment, service: Service
    ) -> tuple[ServiceStatus, str | None]:
        """What ECS says of `service` now (for a canary: of its live colour, also returned)."""
        canary = service.canary_in(env.name)
        if canary is None:
            return await self.describe(env, service.ecs_service), None
        _, _, live = await self._live_version(env, service)
        return await self.describe(env, canary.colour(live).ecs_service), live

    async def check_canary(self, env: Environment, service: Service) -> None:
        """For a canary: its listener forwards to exactly its two target groups, and both
        target groups and both ECS services exist. Raises NotFound with the key to fix.
        Nothing to check for a rolling service."""
        canary = service.canary_in(env.name)
        if canary is None:
            return
        await self.colour_weights(env, service)
        for colour in COLOURS:
            await self._lb.target_health(
                region=env.region, target_group=canary.colour(colour).target_group
            )
            await self.describe(env, canary.colour(colour).ecs_service)

    async def colour_weights(self, env: Environment, svc: Service) -> dict[str, int]:
        """Colour -> weight of a canary's listener. Raises NotFound when it does not forward
        to exactly the two configured target groups."""
        canary = blue_green(env, svc)
        weights = await self._lb.weights(
            region=env.region, listener=canary.listener, rule=canary.rule
        )
        groups = {canary.colour(c).target_group: c for c in COLOURS}
        if set(weights) != set(groups):
            listed = ", ".join(f"`{arn.rsplit(':', 1)[-1]}`" for arn in weights) or "nothing"
            raise NotFound(
                f"The listener of `{svc.name}` in `{env.name}` forwards to {listed}, not to "
                "exactly its blue and green target groups; fix the listener or "
                f"`services.{svc.name}.canary.{env.name}`."
            )
        return {groups[arn]: w for arn, w in weights.items()}

    async def version_on(
        self, env: Environment, service: Service, ecs_service: str
    ) -> RunningVersion:
        """What the ECS service `ecs_service` (`service` itself, or one of its colours) runs."""
        status = await self.describe(env, ecs_service)
        image = await self._ecs.image_of(
            region=env.region, task_definition=status.task_definition, container=service.container
        )
        return RunningVersion(service.name, status.task_definition, image)

    async def describe(self, env: Environment, ecs_service: str) -> ServiceStatus:
        return await self._ecs.describe(region=env.region, cluster=env.cluster, service=ecs_service)

    async def _live_version(self, env: Environment, svc: Service) -> tuple[str, str, str]:
        """(task definition, image, colour) of the colour taking the traffic now."""
        weights = await self.colour_weights(env, svc)
        live = max(COLOURS, key=lambda c: weights[c])
        running = await self.version_on(env, svc, blue_green(env, svc).colour(live).ecs_service)
        return running.task_definition, running.image, live
