"""Where the watch reads a service after a run: its ECS service, and its target group when it
has one (no I/O).

A canary's traffic is on the colour its run left it on (`Target.canary_colour`: the new colour
of a deploy, the colour a rollback went back to), so the watch reads that colour's ECS service
and, unless `watch.target_groups` names one, that colour's target group behind the canary's
listener.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.kernel.config import Config
from store.deploy.models import Deployment


@dataclass(frozen=True)
class Source:
    ecs_service: str
    load_balancer: str | None = None
    target_group: str | None = None


def source_of(config: Config, run: Deployment, service: str) -> Source:
    """What the watch of `service` after `run` reads."""
    svc = config.service(service)
    named = config.environment(run.environment).watch.target_groups.get(service)
    source = Source(
        svc.ecs_service,
        named.load_balancer if named else None,
        named.target_group if named else None,
    )
    canary = svc.canary_in(run.environment)
    colour = next(
        (t.canary_colour for t in run.active_targets if t.service == service and t.canary_colour),
        None,
    )
    if canary is None or colour is None:
        return source
    live = canary.colour(colour)
    if named is not None:
        return Source(live.ecs_service, source.load_balancer, source.target_group)
    return Source(live.ecs_service, canary.load_balancer, live.target_group)
