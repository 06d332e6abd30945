"""Pre-flight checks (seed 003: "IF any pre-deployment checks fail, THEN halt deployment"):
run before the plan card is posted, and again just before the run starts.

- the environment's lock (only its holder may deploy) and its freezes and windows (only a
  break-glass deploy may go outside them);
- each image tag exists in ECR (its digest is kept for the card);
- when promoting, the source environment is healthy (skipped by a `--skip-staging` hotfix).

Every check has a result a dry run can show; a failing one names the service and the check.
Touches AWS and health endpoints (reads only).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pipeline.aws.gates import ecr_repository
from pipeline.freezes import Freezes
from pipeline.health import HealthChecker
from pipeline.kernel.config import Config, Environment, format_duration
from pipeline.kernel.errors import ChatOpsError
from pipeline.kernel.infra import Registry
from pipeline.kernel.text import Line, Person, line
from pipeline.steps import repository_of
from store.deploy.locks import Lock, Locks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    """One check's result. `blocking`: a failure stops the deploy; otherwise it informs."""

    name: str
    ok: bool
    detail: Line
    service: str | None = None
    blocking: bool = True
    digest: str | None = None


@dataclass(frozen=True)
class Planned:
    """What a check needs to know of one service of the plan."""

    service: str
    version: str
    image: str
    """The running image, for its repository when the config names none."""


class Preflight:
    def __init__(
        self,
        *,
        config: Config,
        locks: Locks,
        registry: Registry,
        health: HealthChecker,
        freezes: Freezes | None = None,
    ) -> None:
        self._freezes = freezes
        self._config = config
        self._locks = locks
        self._registry = registry
        self._health = health

    async def lock_of(self, env: Environment, now: datetime) -> Lock | None:
        lock = await self._locks.get(env.name)
        return lock if lock is not None and lock.active(now) else None

    async def run(
        self,
        env: Environment,
        *,
        user_id: str,
        planned: Sequence[Planned],
        now: datetime,
        break_glass: str | None,
        skip_staging: str | None,
        source_health: Sequence[Check] | None = None,
        tell_war_rooms: bool = False,
    ) -> list[Check]:
        """Every check's result, blocking failures included (raises nothing of its own).

        `source_health`: the result of `source_health()` when the caller ran it already
        (alongside reading the fleet); otherwise it is run here. With `tell_war_rooms`, each war
        room whose incident freezes a service of the plan is told of the refusal (or the
        break-glass)."""
        checks = [*await self.access(env, user_id=user_id, now=now, break_glass=break_glass)]
        checks += await self._incident_checks(
            env,
            [p.service for p in planned],
            user_id=user_id,
            break_glass=break_glass,
            tell=tell_war_rooms,
        )
        async with asyncio.TaskGroup() as tg:
            images = [tg.create_task(self._image(env, p)) for p in planned]
            health = (
                tg.create_task(
                    self.source_health(env, [p.service for p in planned], skip_staging=skip_staging)
                )
                if source_health is None
                else None
            )
        checks += [t.result() for t in images]
        wanted = {p.service for p in planned}
        checks += [
            c
            for c in (health.result() if health is not None else source_health or [])
            if c.service in wanted
        ]
        if skip_staging is not None and env.promote_from is not None:
            checks.append(
                Check(
                    "staging",
                    True,
                    line("skipped (hotfix): {reason}", reason=skip_staging),
                    blocking=False,
                )
            )
        return checks

    async def source_health(
        self, env: Environment, services: Sequence[str], *, skip_staging: str | None
    ) -> list[Check]:
        """When `env` is promoted to, the health of each service in its source environment
        (nothing for a hotfix, which skips it). Touches only the health endpoints, so it can run
        while the fleet is read."""
        if env.promote_from is None or skip_staging is not None:
            return []
        async with asyncio.TaskGroup() as tg:
            health = [tg.create_task(self._source(env, s)) for s in services]
        return [t.result() for t in health]

    async def access(
        self, env: Environment, *, user_id: str, now: datetime, break_glass: str | None
    ) -> list[Check]:
        """The lock, the freezes and the windows."""
        checks = []
        lock = await self.lock_of(env, now)
        if lock is not None and lock.holder != user_id:
            checks.append(Check("lock", False, lock_line(lock)))
        else:
            held = " (your lock)" if lock is not None else ""
            checks.append(Check("lock", True, Line.literal(f"not locked{held}")))
        schedule = env.schedule
        freeze = schedule.freeze_at(now)
        if freeze is not None:
            detail = f"frozen {freeze.start} to {freeze.end}: {freeze.reason}"
            checks.append(
                _closed("freeze", detail, break_glass, passed="break-glass through a freeze ({d})")
            )
        if not schedule.open_at(now):
            nxt = schedule.next_open(now)
            when = (
                f"the next window opens {nxt:%a %Y-%m-%d %H:%M} {schedule.timezone}"
                if nxt
                else "no window opens in the next 60 days"
            )
            detail = f"outside the deploy windows ({', '.join(schedule.windows)}); {when}"
            checks.append(
                _closed(
                    "window", detail, break_glass, passed="break-glass outside the windows ({d})"
                )
            )
        elif schedule.windows:
            checks.append(Check("window", True, Line.literal("inside a deploy window")))
        return checks

    async def _incident_checks(
        self,
        env: Environment,
        services: Sequence[str],
        *,
        user_id: str,
        break_glass: str | None,
        tell: bool,
    ) -> list[Check]:
        if self._freezes is None:
            return []
        checks = []
        for freeze in await self._freezes.of(env.name, services):
            incident = freeze.incident
            detail = line(
                "{services} frozen by {sev} `{id}` ({summary}); war room #{room}",
                services=", ".join(freeze.services),
                sev=incident.severity.upper(),
                id=incident.id,
                summary=incident.summary,
                room=incident.channel_name,
            )
            if break_glass:
                checks.append(Check("incident", True, detail.then("(break-glass)")))
            else:
                checks.append(Check("incident", False, detail))
            if tell:
                try:
                    await self._freezes.tell(
                        freeze, user_id=user_id, environment=env.name, break_glass=break_glass
                    )
                except ChatOpsError as exc:
                    log.warning("war room %s not told: %s", incident.channel_id, exc.user_message)
        return checks

    async def _image(self, env: Environment, planned: Planned) -> Check:
        svc = self._config.service(planned.service)
        image = f"{repository_of(svc.image or planned.image)}:{planned.version}"
        if not env.ecr_check:
            return Check(
                "image", True, Line.literal("not checked (ecr_check is off)"), planned.service
            )
        if ecr_repository(image) is None:
            return Check("image", True, Line.literal("not in ECR: not checked"), planned.service)
        try:
            digest = await self._registry.digest(region=env.region, image=image)
        except ChatOpsError as exc:
            return Check("image", False, exc.line, planned.service)
        return Check(
            "image",
            True,
            line("`{image}` is {digest}", image=image, digest=f"{digest[:19]}…"),
            planned.service,
            digest=digest,
        )

    async def _source(self, env: Environment, service: str) -> Check:
        assert env.promote_from is not None
        source = self._config.environment(env.promote_from)
        svc = self._config.service(service)
        base = svc.health_url.get(source.name)
        if base is None:
            return Check(
                "source health",
                True,
                line("`{source}` has no health URL: not checked", source=source.name),
                service,
            )
        results = await self._health.probe(
            base_url=base, paths=svc.health_paths or source.health.paths, settings=source.health
        )
        bad = [r for r in results if not r.healthy]
        if bad:
            said = line(
                "`{source}` is not healthy: {detail}",
                source=source.name,
                detail=", ".join(f"`{r.path}` {r.detail}" for r in bad),
            )
        else:
            # Only the endpoints' answers were checked, not which version the source runs.
            said = line(
                "`{source}` answered {answers} (each within {timeout})",
                source=source.name,
                answers=", ".join(f"`{r.path}` {r.detail}" for r in results),
                timeout=format_duration(source.health.timeout_s),
            )
        return Check("source health", not bad, said, service)


def lock_line(lock: Lock) -> Line:
    until = f" until {lock.until:%Y-%m-%d %H:%M UTC}" if lock.until else ""
    return line(
        "`{env}` is locked by {who} since {since}{until}: {reason}.",
        env=lock.environment,
        who=Person(lock.holder),
        since=f"{lock.since:%Y-%m-%d %H:%M UTC}",
        until=until,
        reason=lock.reason or "no reason given",
    )


def _closed(name: str, detail: str, break_glass: str | None, *, passed: str) -> Check:
    """A check of a schedule that is closed now (a freeze, outside the windows): it fails,
    unless break-glass passes through it (`passed` then says how)."""
    if break_glass:
        return Check(name, True, line(passed, d=detail))
    return Check(name, False, line("{d}.", d=detail))


def blocking_failures(checks: Sequence[Check]) -> list[Check]:
    return [c for c in checks if c.blocking and not c.ok]
