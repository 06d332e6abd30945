"""What an environment's deploy records say to a rollback: which change of a service is in
effect, which versions ran, whose windows are open, and which migrations going back leaves behind.

Pure functions over `Deployments.succeeded()` (newest first): nothing here reads ECS or writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pipeline.kernel.errors import UsageError
from store.deploy.models import (
    Deployment,
    RunKind,
    Target,
    TargetStatus,
    UndoneMigrations,
)


@dataclass(frozen=True)
class Undo:
    """The deploy whose change of one service is in effect, and that change."""

    run: Deployment
    target: Target


def last_change(history: list[Deployment], service: str) -> Undo | None:
    """The newest successful deploy of `service` that no rollback took back."""
    for run in history:
        if run.kind is not RunKind.DEPLOY:
            continue
        for t in run.active_targets:
            if t.service == service and t.status is TargetStatus.HEALTHY:
                if t.reverted_by is not None:
                    break
                return Undo(run, t)
    return None


def last_deploy_services(history: list[Deployment], environment: str) -> tuple[str, ...]:
    """The services the newest deploy still in effect changed. Raises UsageError when none is."""
    for run in history:
        if run.kind is RunKind.DEPLOY:
            services = tuple(t.service for t in run.not_taken_back)
            if services:
                return services
    raise UsageError(
        "Nothing to roll back in `{env}`: no deploy has succeeded there yet (or every one "
        "was rolled back already). Name a service and a version that ran there.",
        env=environment,
    )


def within_window(targets: list[Target], history: list[Deployment], *, now: datetime) -> bool:
    """True when every service goes back from a deploy whose window is still open."""
    by_id = {r.id: r for r in history}
    active = [t for t in targets if t.status is not TargetStatus.SKIPPED]
    return bool(active) and all(
        t.reverts is not None and t.reverts in by_id and by_id[t.reverts].window_open(now)
        for t in active
    )


def migrations_undone(
    history: list[Deployment], targets: list[Target]
) -> tuple[UndoneMigrations, ...]:
    """The deploys (newest first) whose change of a service this rollback takes back and that
    ran migrations: each deploy of the service still in effect, newer than the revision the
    rollback goes back to."""
    found: dict[str, UndoneMigrations] = {}
    for t in targets:
        if t.status is TargetStatus.SKIPPED:
            continue
        for run in history:
            if run.kind is not RunKind.DEPLOY:
                continue
            mine = next((x for x in run.active_targets if x.service == t.service), None)
            if mine is None or mine.reverted_by is not None:
                continue
            if mine.new_task_def == t.new_task_def:
                break  # the revision the rollback goes back to: older deploys stay
            if run.migrations and run.id not in found:
                found[run.id] = UndoneMigrations(
                    deployment_id=run.id, services=tuple(m.service for m in run.migrations)
                )
            if mine.previous_task_def == t.new_task_def:
                break
    return tuple(found.values())


def newest_task_def(history: list[Deployment], service: str, version: str) -> str | None:
    """The newest recorded task definition that ran `version` of `service`."""
    for run in history:
        for t in run.active_targets:
            if t.service != service:
                continue
            if t.target_version == version and t.new_task_def:
                return t.new_task_def
            if t.current_version == version and t.previous_task_def:
                return t.previous_task_def
    return None


def versions_hint(history: list[Deployment], service: str) -> str:
    """A sentence listing the versions of `service` the records hold, for an error message."""
    seen: list[str] = []
    for run in history:
        for t in run.active_targets:
            if t.service == service:
                for v in (t.target_version, t.current_version):
                    if v and v not in seen:
                        seen.append(v)
    if not seen:
        return "No version of it is recorded there; deploy one with `/deploy`."
    return "Versions recorded there: " + ", ".join(f"`{v}`" for v in seen) + "."
