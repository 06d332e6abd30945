"""`/health <environment> [service...] [--full]`: every service's health endpoints checked in
parallel (seed 001's `./scripts/health-check.sh production`), answered as one table: status,
latency and the version each reports; `--full` adds what ECS runs (tasks and task definition).

Touches health endpoints and, with `--full`, ECS (reads only).
"""

from __future__ import annotations

import asyncio
import json

from commands.exchange import Answer, Invocation, Later, Outcome
from commands.health.parse import parse_health
from commands.health.replies import HealthReport, HealthRow
from commands.parsing import Help
from commands.usage import Choices, Syntax, Usage
from pipeline.fleet import Fleet
from pipeline.health import HealthChecker
from pipeline.kernel.config import Config, Environment, Service
from pipeline.kernel.errors import ChatOpsError
from pipeline.kernel.text import Line


def usage(config: Config) -> Usage:
    """What `/health help` shows."""
    return Usage(
        forms=(
            Syntax(
                "/health <environment> [service...] [--full]",
                Line.literal(
                    "check the health endpoints of every service (or those named) in parallel; "
                    "`--full` adds what ECS runs."
                ),
            ),
        ),
        choices=(
            Choices("Environments", tuple(sorted(config.environments))),
            Choices("Services", tuple(sorted(config.services))),
        ),
    )


class HealthCommands:
    def __init__(self, *, config: Config, fleet: Fleet, health: HealthChecker) -> None:
        self._config = config
        # Asked for often, the same while the bot runs: built once (and so drawn once).
        self._help = usage(config)
        self._fleet = fleet
        self._health = health

    async def on_command(self, inv: Invocation) -> Answer:
        """Answer `/health …`. Raises UsageError (nothing checked) for text it cannot read."""
        parsed = parse_health(inv.text, self._config)
        if isinstance(parsed, Help):
            return Outcome(reply=self._help, audit="help")
        env = self._config.environment(parsed.environment)
        services = [self._config.service(name) for name in parsed.services]
        full = parsed.full

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
