"""Demo services: a health endpoint for every service in every environment of the sandbox.

Each answers from the version ECS (moto) runs for it now, so a deploy changes what it says. A
version can be made unhealthy (503 everywhere), slow (answers after the bot has stopped
waiting) or erroring (500 from its API status) in every environment that runs it: deploy that
version and the bot's health check fails and rolls it back; the version rolled back to answers
well again.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from aiohttp import web

from sandbox.aws import VERSIONS, Estate, LocalAws

SLOW_ANSWER_S: Final = 5.0  # longer than the sandbox config's 1 s health timeout
API_STATUS_PATH: Final = "/api/v1/status"
SHUTDOWN_TIMEOUT_S: Final = 2.0


class Mode(StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    SLOW = "slow"
    ERRORING = "erroring"


MODE_NOTES: Final = {
    Mode.HEALTHY: "answers 200",
    Mode.UNHEALTHY: "answers 503 on every path",
    Mode.SLOW: f"answers after {SLOW_ANSWER_S:g}s, too late",
    Mode.ERRORING: f"answers 500 on {API_STATUS_PATH}",
}


@dataclass(frozen=True)
class Answer:
    """The last answer one endpoint gave: its path, HTTP status and the version that gave it."""

    path: str
    status: int
    version: str | None


class EcsVersions:
    """What version each service runs, read from moto through boto3 (blocking: use a thread).

    Task definitions never change once registered, so each one's image is read once.
    """

    def __init__(self, aws: LocalAws, estate: Estate) -> None:
        self._aws = aws
        self._estate = estate
        self._images: dict[str, str] = {}
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}

    def _client(self, region: str) -> Any:
        with self._lock:
            if region not in self._clients:
                self._clients[region] = self._aws.client("ecs", region)
            return self._clients[region]

    def running(self, environment: str) -> dict[str, str | None]:
        """Each service's running version in `environment` (None when ECS has no such service)."""
        cluster = next(c for c in self._estate.clusters if c.environment == environment)
        ecs = self._client(cluster.region)
        by_ecs_name = {s.ecs_service: s for s in self._estate.services}
        found: dict[str, str | None] = {s.name: None for s in self._estate.services}
        names = list(by_ecs_name)
        for start in range(0, len(names), 10):  # AWS: describe_services takes 10 at a time
            out = ecs.describe_services(cluster=cluster.name, services=names[start : start + 10])
            for described in out.get("services", []):
                svc = by_ecs_name.get(described["serviceName"])
                if svc is not None and described.get("status") == "ACTIVE":
                    image = self._image(ecs, described["taskDefinition"], svc.container)
                    found[svc.name] = _tag(image)
        return found

    def _image(self, ecs: Any, task_definition: str, container: str) -> str:
        key = f"{task_definition}#{container}"
        if key not in self._images:
            described = ecs.describe_task_definition(taskDefinition=task_definition)
            containers = described["taskDefinition"]["containerDefinitions"]
            self._images[key] = next((c["image"] for c in containers if c["name"] == container), "")
        return self._images[key]


def _tag(image: str) -> str | None:
    name = image.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[1] if ":" in name else None


class DemoServices:
    """The health endpoints, at `{base}/{environment}/{service}{path}` on 127.0.0.1."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.faults: dict[tuple[str, str], Mode] = {}
        self.answers: dict[tuple[str, str], Answer] = {}
        self.on_change: Callable[[], None] = lambda: None
        self._versions: EcsVersions | None = None
        self._estate: Estate | None = None
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self._base: str | None = None
        self._closing = asyncio.Event()

    @property
    def base(self) -> str:
        if self._base is None:
            raise RuntimeError("DemoServices has no address until start() has run.")
        return self._base

    def url(self, environment: str, service: str) -> str:
        return f"{self.base}/{environment}/{service}"

    def attach(self, aws: LocalAws, estate: Estate) -> None:
        """Answer from what `aws` runs for the services of `estate`."""
        self._versions = EcsVersions(aws, estate)
        self._estate = estate

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{environment}/{service}{path:/.*}", self._health)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._base = f"http://{host}:{port}"

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def set_fault(self, service: str, version: str, mode: Mode) -> None:
        """Make `version` of `service` answer as `mode` says, wherever it runs."""
        if mode is Mode.HEALTHY:
            self.faults.pop((service, version), None)
        else:
            self.faults[(service, version)] = mode
        self.on_change()

    def mode_of(self, service: str, version: str | None) -> Mode:
        return self.faults.get((service, version or ""), Mode.HEALTHY)

    async def running(self, environment: str) -> dict[str, str | None]:
        """Each service's running version in `environment`, from ECS."""
        if self._versions is None:
            raise RuntimeError("DemoServices answers only once attach() has run.")
        return await asyncio.to_thread(self._versions.running, environment)

    def overview(self) -> dict[str, Any]:
        """Services, environments, versions that can be broken, and the modes, for the page."""
        estate = self._estate
        return {
            "environments": [c.environment for c in estate.clusters] if estate else [],
            "services": [s.name for s in estate.services] if estate else [],
            "versions": list(VERSIONS),
            "modes": [{"mode": m.value, "note": MODE_NOTES[m]} for m in Mode],
        }

    async def _health(self, request: web.Request) -> web.StreamResponse:
        environment = request.match_info["environment"]
        service = request.match_info["service"]
        path = request.match_info["path"]
        estate = self._estate
        known = estate is not None and any(c.environment == environment for c in estate.clusters)
        if not known:
            return web.json_response({"error": f"no environment {environment}"}, status=404)
        version = (await self.running(environment)).get(service, "missing")
        if version == "missing":
            return web.json_response({"error": f"no service {service}"}, status=404)
        mode = self.mode_of(service, version)
        status = 200
        if mode is Mode.UNHEALTHY:
            status = 503
        elif mode is Mode.ERRORING and path == API_STATUS_PATH:
            status = 500
        elif mode is Mode.SLOW:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), SLOW_ANSWER_S)
        self.answers[(environment, service)] = Answer(path, status, version)
        self.on_change()
        body = {
            "service": service,
            "environment": environment,
            "version": version,
            "status": "ok" if status == 200 else "failing",
        }
        return web.json_response(body, status=status)
