"""Ports: the small interfaces the engine needs from the outside world.

`bot/` implements `Notifier` and `Directory` on Slack; tests use fakes. Nothing here may import
Slack or AWS packages, and the methods take domain objects, never Block Kit or payloads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from store.models import Deployment, StageEvent


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class Notifier(Protocol):
    """Tells people how a deployment is going (the card and its thread)."""

    async def stage_changed(self, run: Deployment, event: StageEvent) -> None: ...

    async def run_changed(self, run: Deployment) -> None:
        """The run's state changed: redraw whatever shows it."""
        ...


class Directory(Protocol):
    """Who belongs to a user group."""

    async def members_of(self, group_id: str) -> frozenset[str]: ...


@dataclass(frozen=True)
class ServiceStatus:
    """What ECS says about one service right now."""

    task_definition: str
    desired: int
    running: int
    deployments: int
    rollout_failed: bool
    failure_reason: str | None = None

    def runs(self, task_definition: str) -> bool:
        """True when every task runs `task_definition` and no old deployment is left."""
        return (
            self.task_definition == task_definition
            and self.running == self.desired
            and self.deployments <= 1
        )


class Ecs(Protocol):
    """The ECS operations the pipeline needs. Implementations must be idempotent-safe to retry."""

    async def describe(self, *, region: str, cluster: str, service: str) -> ServiceStatus: ...

    async def image_of(self, *, region: str, task_definition: str, container: str) -> str: ...

    async def register_with_image(
        self, *, region: str, task_definition: str, container: str, image: str
    ) -> str:
        """Register a copy of `task_definition` with `container`'s image replaced; its ARN."""
        ...

    async def update_service(
        self, *, region: str, cluster: str, service: str, task_definition: str
    ) -> None: ...
