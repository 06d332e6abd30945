"""`/health <environment> [service...] [--full]`: every service's health endpoints checked in
parallel (seed 001's `./scripts/health-check.sh production`), answered as one table: status,
latency and the version each reports; `--full` adds what ECS runs (tasks and task definition).

Touches health endpoints and, with `--full`, ECS (reads only).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from commands.exchange import Answer, Invocation, Later, Outcome
from pipeline.fleet import Fleet
from pipeline.health import HealthChecker
from pipeline.kernel.config import Config, Environment, Service
from pipeline.kernel.errors import ChatOpsError, UsageError, options


@dataclass(frozen=True)
class HealthRow:
    service: str
    healthy: bool | None
    """None: no health URL in this environment."""
    detail: str
    latency_s: float | None
    version: str | None
    running: int | None = None
    desired: int | None = None
    task_definition: str | None = None


@dataclass(frozen=True)
class HealthReport:
    """Reply: one row per service."""

    environment: str
    rows: tuple[HealthRow, ...]
    full: bool


def usage(config: Config) -> str:
    return (
        "*Usage*\n"
        "• `/health <environment> [service...] [--full]`: check the health endpoints of every "
        "service (or those named) in parallel; `--full` adds what ECS runs.\n"
        f"Environments: {options(config.environments)}\nServices: {options(config.services)}"
    )


class HealthCommands:
    def __init__(self, *, config: Config, fleet: Fleet, health: HealthChecker) -> None:
        self._config = config
        self._fleet = fleet
        self._health = health

    async def on_command(self, inv: Invocation) -> Answer:
        words = inv.text.split()
        full = any(w.lower() == "--full" for w in words)
        words = [w for w in words if w.lower() != "--full"]
        if not words or words[0].lower() == "help":
            return Outcome(reply=usage(self._config), audit="help")
        unknown = [w for w in words[1:] for part in w.split(",") if part and part.startswith("-")]
        if unknown:
            raise UsageError(
                "`{flag}` is not a flag of `/health`; the only one is `--full`.", flag=unknown[0]
            )
        env = self._config.environment(words[0])
        names = [p for w in words[1:] for p in w.split(",") if p]
        # Named twice (`auth-svc auth-svc`, `AUTH-svc,auth-svc`): one row.
        named = {svc.name: svc for svc in (self._config.service(n) for n in names)}
        services = list(named.values()) or list(self._config.services.values())

        async def then() -> Outcome:
            return Outcome(reply=await self.check(env, services, full=full))

        return Later(then)

    async def check(self, env: Environment, services: list[Service], *, full: bool) -> HealthReport:
        async with asyncio.TaskGroup() as tg:
            rows = [tg.create_task(self._row(env, svc, full=full)) for svc in services]
        return HealthReport(env.name, tuple(r.result() for r in rows), full)

    async def _row(self, env: Environment, svc: Service, *, full: bool) -> HealthRow:
        base = svc.health_url.get(env.name)
        canary = svc.canary_in(env.name)
        running = desired = task_definition = None
        if full or (base is None and canary is not None):
            try:
                status, colour = await self._fleet.service_state(env, svc)
                running, desired, task_definition = (
                    status.running,
                    status.desired,
                    status.task_definition,
                )
                if base is None and canary is not None and colour is not None:
                    base = canary.colour(colour).health_url
            except ChatOpsError as exc:
                return HealthRow(svc.name, False, exc.user_message, None, None)
        if base is None:
            return HealthRow(
                svc.name, None, "no health URL here", None, None, running, desired, task_definition
            )
        paths = svc.health_paths or env.health.paths
        answers = await asyncio.gather(
            *(
                self._health.request("GET", base.rstrip("/") + p, timeout_s=env.health.timeout_s)
                for p in paths
            )
        )
        bad = [
            f"`{p}` {a.status or 'no answer'}"
            for p, a in zip(paths, answers, strict=True)
            if a.status != env.health.expect_status
        ]
        version = next((v for a in answers if (v := _version(a.body)) is not None), None)
        return HealthRow(
            svc.name,
            not bad,
            ", ".join(bad) or "all endpoints answered",
            max(a.latency_s for a in answers),
            version,
            running,
            desired,
            task_definition,
        )


def _version(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    value = data.get("version") if isinstance(data, dict) else None
    return str(value) if value is not None else None
