"""Demo services: a health endpoint for every service in every environment of the sandbox,
and the traffic its load balancer and ECS would report to CloudWatch.

Each endpoint answers from the version ECS (moto) runs for it now, so a deploy changes what it
says; a canary's endpoint answers from the colour taking the traffic, and each colour has its
own (`{service}-{colour}`). A version can be made unhealthy (503 everywhere), slow (answers
after the bot has stopped waiting) or erroring (health answers 200, but a share of its
traffic gets 500s) in every environment that runs it. Unhealthy and slow fail the bot's health
checks; erroring shows only in the CloudWatch figures `AlbTraffic` puts every second for each
canary colour that takes traffic, so a canary's 5xx gate catches it, and every few seconds for
every other service's target group, which the watch after a deploy reads with each ECS
service's CPU and memory. A version can also fail after its deploy: healthy until it has taken
all its service's traffic for a while, erroring after, so the watch (not a gate) alerts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from aiohttp import web

from sandbox.aws import (
    COLOURS,
    VERSIONS,
    CanaryArns,
    Estate,
    LocalAws,
    ServiceArns,
    register_targets,
    service_arns,
)

SLOW_ANSWER_S: Final = 5.0  # longer than the sandbox config's 1 s health timeout
SHUTDOWN_TIMEOUT_S: Final = 2.0
# What the ALB of a canary reports: requests a second at 100% of the traffic (a 5% colour gets
# about 5, enough for the sandbox's `min_requests` within its 3 s first stage), the share of an
# erroring version's answers that are 500s, and a healthy answer's time.
REQUESTS_PER_S: Final = 100
ERROR_SHARE: Final = 0.2
ANSWER_S: Final = 0.05
TRAFFIC_EVERY_S: Final = 1.0
NAMESPACE: Final = "AWS/ApplicationELB"
PUT_AT_MOST: Final = 1000  # datapoints in one PutMetricData, as CloudWatch allows
# The other services' own traffic and every ECS service's utilisation, for the watch after a
# deploy (which reads whole minutes): reported less often, so moto's CloudWatch stays quick.
SERVICE_EVERY_S: Final = 10.0
ECS_NAMESPACE: Final = "AWS/ECS"
CPU_PERCENT: Final = 35.0
MEMORY_PERCENT: Final = 45.0
# A version that fails after its deploy errs this long after it takes all the traffic: after a
# canary's last stage has baked, so the watch (not the canary's gate) sees it.
FAILS_AFTER_S: Final = 20.0

log = logging.getLogger(__name__)


class Mode(StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    SLOW = "slow"
    ERRORING = "erroring"
    FAILS_AFTER_DEPLOY = "fails after deploy"


MODE_NOTES: Final = {
    Mode.HEALTHY: "answers 200",
    Mode.UNHEALTHY: "answers 503 on every path",
    Mode.SLOW: f"answers after {SLOW_ANSWER_S:g}s, too late",
    Mode.ERRORING: f"health answers 200, {ERROR_SHARE:.0%} of its traffic gets 500s: "
    "a canary's 5xx gate sees it",
    Mode.FAILS_AFTER_DEPLOY: f"deploys cleanly, then {ERROR_SHARE:.0%} of its traffic gets "
    f"500s from {FAILS_AFTER_S:g}s after it takes all of it: the watch after the deploy "
    "alerts",
}


@dataclass(frozen=True)
class Answer:
    """The last answer one endpoint gave: its path, HTTP status and the version that gave it."""

    path: str
    status: int
    version: str | None


@dataclass(frozen=True)
class Colour:
    """One colour of a canary now: what its ECS service runs and wants, and its weight."""

    version: str | None
    desired: int
    weight: int


@dataclass(frozen=True)
class Snapshot:
    """One environment as ECS and the load balancer hold it now."""

    versions: dict[str, str | None]  # ECS service name -> version (None: no such service)
    desired: dict[str, int]
    colours: dict[str, dict[str, Colour]] = field(default_factory=dict)  # service -> colour ->
    running: dict[str, str | None] = field(default_factory=dict)
    """Service -> the version it runs; for a canary, the colour taking the traffic runs it."""

    def live(self, service: str) -> str | None:
        """The colour taking the traffic, for a canary; None for another service."""
        colours = self.colours.get(service)
        return max(COLOURS, key=lambda c: colours[c].weight) if colours else None


class EcsVersions:
    """What each service runs, read from moto through boto3 (blocking: use a thread).

    Task definitions never change once registered, so each one's image is read once.
    """

    def __init__(self, aws: LocalAws, estate: Estate, canaries: Sequence[CanaryArns] = ()) -> None:
        self._aws = aws
        self._estate = estate
        self._canaries = list(canaries)
        self._images: dict[str, str] = {}
        self._lock = threading.Lock()

    def snapshot(self, environment: str) -> Snapshot:
        """ECS's services and the canaries' listener weights in `environment`."""
        cluster = self._estate.cluster(environment)
        ecs = self._aws.client("ecs", cluster.region)
        known = self._estate.ecs_services(environment)
        versions: dict[str, str | None] = dict.fromkeys(known)
        desired: dict[str, int] = dict.fromkeys(known, 0)
        names = list(known)
        for start in range(0, len(names), 10):  # AWS: describe_services takes 10 at a time
            out = ecs.describe_services(cluster=cluster.name, services=names[start : start + 10])
            for described in out.get("services", []):
                name = described["serviceName"]
                if name in known and described.get("status") == "ACTIVE":
                    container = known[name][0].container
                    image = self._image(ecs, described["taskDefinition"], container)
                    versions[name] = _tag(image)
                    desired[name] = int(described.get("desiredCount", 0))
        colours = {}
        for arns in self._canaries:
            canary = arns.canary
            if canary.environment != environment:
                continue
            weights = self._weights(cluster.region, arns)
            colours[canary.service] = {
                c: Colour(
                    versions.get(canary.ecs_service(c)),
                    desired.get(canary.ecs_service(c), 0),
                    weights.get(c, 0),
                )
                for c in COLOURS
            }
        snap = Snapshot(versions, desired, colours)
        for svc in self._estate.services:
            pair = self._estate.canary(environment, svc.name)
            live = snap.live(svc.name)
            name = svc.ecs_service if pair is None or live is None else pair.ecs_service(live)
            snap.running[svc.name] = versions.get(name)
        return snap

    def running(self, environment: str) -> dict[str, str | None]:
        """Each service's running version in `environment` (None when ECS has no such service);
        for a canary, the version of the colour taking the traffic."""
        return self.snapshot(environment).running

    def _weights(self, region: str, arns: CanaryArns) -> dict[str, int]:
        elb = self._aws.client("elbv2", region)
        listener = elb.describe_listeners(ListenerArns=[arns.listener])["Listeners"][0]
        colour_of = {arn: colour for colour, arn in arns.target_groups.items()}
        return {
            colour_of[g["TargetGroupArn"]]: int(g.get("Weight", 0))
            for action in listener["DefaultActions"]
            for g in (action.get("ForwardConfig") or {}).get("TargetGroups") or []
            if g["TargetGroupArn"] in colour_of
        }

    def _image(self, ecs: Any, task_definition: str, container: str) -> str:
        key = f"{task_definition}#{container}"
        with self._lock:
            cached = self._images.get(key)
        if cached is None:
            described = ecs.describe_task_definition(taskDefinition=task_definition)
            containers = described["taskDefinition"]["containerDefinitions"]
            cached = next((c["image"] for c in containers if c["name"] == container), "")
            with self._lock:
                self._images[key] = cached
        return cached


def _tag(image: str) -> str | None:
    name = image.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[1] if ":" in name else None


class AlbTraffic:
    """What the load balancers and ECS would report to CloudWatch, once a tick (blocking).

    Every canary colour taking traffic gets its share of `REQUESTS_PER_S` as `RequestCount`,
    its answer time as `TargetResponseTime`, and, when the version it runs is erroring or
    unhealthy, `HTTPCode_Target_5XX_Count`; all timestamped now, per target group and load
    balancer, as the ALB reports them. Every `SERVICE_EVERY_S`, each other service's own target
    group gets the same figures for that long, and each ECS service running tasks its
    `CPUUtilization` and `MemoryUtilization`: what the watch after a deploy reads. Each tick
    also registers targets as ECS would.
    """

    def __init__(
        self,
        aws: LocalAws,
        estate: Estate,
        versions: EcsVersions,
        canaries: Sequence[CanaryArns],
        *,
        mode_of: Callable[[str, str | None], Mode],
    ) -> None:
        self._aws = aws
        self._estate = estate
        self._versions = versions
        self._canaries = list(canaries)
        self._services: list[ServiceArns] | None = None  # read from moto at the first tick
        self._mode_of = mode_of
        self._last_services: datetime | None = None
        self._last_tick: datetime | None = None
        # (environment, service, version) -> since when it takes all its service's traffic.
        self._full_since: dict[tuple[str, str, str | None], datetime] = {}
        # What this tick judged, and which of those take all their service's traffic.
        self._seen: set[tuple[str, str, str | None]] = set()
        self._full: set[tuple[str, str, str | None]] = set()

    @property
    def services(self) -> list[ServiceArns]:
        """Each service's own target group (every service but the canaries), once ticked."""
        return list(self._services or ())

    def tick(self, now: datetime | None = None) -> None:
        self.ticks([now or datetime.now(UTC)])

    def catch_up(self, until: datetime) -> None:
        """Every tick from the last one to `until`, `TRAFFIC_EVERY_S` apart (the first tick:
        `until` itself), for a sandbox on virtual time whose clock has moved to `until`."""
        last = self._last_tick
        if last is None:
            self.ticks([until])
            return
        step = timedelta(seconds=TRAFFIC_EVERY_S)
        times = []
        while last + step <= until:
            last += step
            times.append(last)
        if times:
            self.ticks(times)

    def ticks(self, times: Sequence[datetime]) -> None:
        """The figures of a tick at each of `times` (in order), from what ECS and the listeners
        hold now, put to CloudWatch in as few calls as it takes."""
        if self._services is None:
            self._services = service_arns(self._estate, self._aws.client)
        register_targets(self._estate, self._aws.client)
        snaps: dict[str, Snapshot] = {}
        figures: dict[tuple[str, str], list[Any]] = {}  # (region, namespace) -> datapoints
        for at in times:
            self._last_tick = at
            due = self._last_services is None or (
                (at - self._last_services).total_seconds() >= SERVICE_EVERY_S
            )
            if due:
                self._last_services = at
            self._seen.clear()
            self._full.clear()
            for cluster in self._estate.clusters:
                environment = cluster.environment
                canaries = any(a.canary.environment == environment for a in self._canaries)
                if not due and not canaries:
                    continue
                if environment not in snaps:
                    snaps[environment] = self._versions.snapshot(environment)
                snap = snaps[environment]
                alb = self._canary_figures(environment, snap, at)
                ecs: list[Any] = []
                if due:
                    alb += self._service_figures(environment, snap, at)
                    ecs = _utilisation(self._estate, environment, snap, at)
                figures.setdefault((cluster.region, NAMESPACE), []).extend(alb)
                figures.setdefault((cluster.region, ECS_NAMESPACE), []).extend(ecs)
            # A version no longer taking all the traffic starts over (a later deploy of it too).
            seen = {(e, s) for e, s, _ in self._seen}
            self._full_since = {
                k: v for k, v in self._full_since.items() if k in self._full or k[:2] not in seen
            }
        for (region, namespace), data in figures.items():
            cloudwatch = self._aws.client("cloudwatch", region)
            for start in range(0, len(data), PUT_AT_MOST):
                batch = data[start : start + PUT_AT_MOST]
                cloudwatch.put_metric_data(Namespace=namespace, MetricData=batch)

    def _mode(self, key: tuple[str, str, str | None], weight: int, at: datetime) -> Mode:
        """How a version answers now: a version that fails after its deploy is healthy until
        it has taken all its service's traffic for `FAILS_AFTER_S`, then erroring."""
        self._seen.add(key)
        mode = self._mode_of(key[1], key[2])
        if weight < 100:
            return Mode.HEALTHY if mode is Mode.FAILS_AFTER_DEPLOY else mode
        self._full.add(key)
        since = self._full_since.setdefault(key, at)
        if mode is not Mode.FAILS_AFTER_DEPLOY:
            return mode
        late = (at - since).total_seconds() >= FAILS_AFTER_S
        return Mode.ERRORING if late else Mode.HEALTHY

    def _canary_figures(self, environment: str, snap: Snapshot, at: datetime) -> list[Any]:
        data = []
        for arns in self._canaries:
            canary = arns.canary
            if canary.environment != environment:
                continue
            load_balancer = _load_balancer(arns.listener)
            for colour, state in snap.colours[canary.service].items():
                if state.weight <= 0 or state.desired <= 0:
                    continue
                key = (environment, canary.service, state.version)
                mode = self._mode(key, state.weight, at)
                group = arns.target_groups[colour]
                data += _figures(state.weight, mode, _alb_dims(group, load_balancer), at)
        return data

    def _service_figures(self, environment: str, snap: Snapshot, at: datetime) -> list[Any]:
        data = []
        for arns in self.services:
            version = snap.running.get(arns.service)
            if arns.environment != environment or version is None:
                continue
            mode = self._mode((environment, arns.service, version), 100, at)
            dims = _alb_dims(arns.target_group, arns.load_balancer)
            data += _figures(100, mode, dims, at, every_s=SERVICE_EVERY_S)
        return data


def _alb_dims(target_group: str, load_balancer: str) -> list[dict[str, str]]:
    return [
        {"Name": "TargetGroup", "Value": target_group.split(":", 5)[-1]},
        {"Name": "LoadBalancer", "Value": load_balancer},
    ]


def _utilisation(estate: Estate, environment: str, snap: Snapshot, at: datetime) -> list[Any]:
    """Each ECS service running tasks in `environment`: its CPU and memory, as ECS reports."""
    cluster = estate.cluster(environment).name
    data = []
    for name in estate.ecs_services(environment):
        if snap.desired.get(name, 0) <= 0:
            continue
        dims = [{"Name": "ClusterName", "Value": cluster}, {"Name": "ServiceName", "Value": name}]
        for metric, value in (
            ("CPUUtilization", CPU_PERCENT),
            ("MemoryUtilization", MEMORY_PERCENT),
        ):
            data.append({"MetricName": metric, "Dimensions": dims, "Value": value, "Timestamp": at})
    return data


def _load_balancer(listener: str) -> str:
    """CloudWatch's `LoadBalancer` dimension (`app/<name>/<id>`) of a listener's ARN."""
    return "/".join(listener.split(":", 5)[-1].split("/")[1:4])


def _figures(
    weight: int,
    mode: Mode,
    dims: list[dict[str, str]],
    at: datetime,
    *,
    every_s: float = TRAFFIC_EVERY_S,
) -> list[Any]:
    requests = max(1, round(REQUESTS_PER_S * weight / 100 * every_s))
    errors = {
        Mode.ERRORING: max(1, round(requests * ERROR_SHARE)),
        Mode.UNHEALTHY: requests,
    }.get(mode, 0)
    latency = SLOW_ANSWER_S if mode is Mode.SLOW else ANSWER_S
    data = [
        {"MetricName": "RequestCount", "Dimensions": dims, "Value": requests, "Timestamp": at},
        {"MetricName": "TargetResponseTime", "Dimensions": dims, "Value": latency, "Timestamp": at},
    ]
    if errors:
        data.append(
            {
                "MetricName": "HTTPCode_Target_5XX_Count",
                "Dimensions": dims,
                "Value": errors,
                "Timestamp": at,
            }
        )
    return data


class DemoServices:
    """The health endpoints, at `{base}/{environment}/{service}{path}` on 127.0.0.1, and the
    canaries' traffic while `attach()`ed to a seeded AWS."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.faults: dict[tuple[str, str], Mode] = {}
        self.answers: dict[tuple[str, str], Answer] = {}
        self.on_change: Callable[[], None] = lambda: None
        self._aws: LocalAws | None = None
        self._versions: EcsVersions | None = None
        self._traffic: AlbTraffic | None = None
        self._estate: Estate | None = None
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self._base: str | None = None
        self._closing = asyncio.Event()
        self._stop_traffic = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None

    @property
    def base(self) -> str:
        if self._base is None:
            raise RuntimeError("DemoServices has no address until start() has run.")
        return self._base

    def url(self, environment: str, service: str) -> str:
        return f"{self.base}/{environment}/{service}"

    def attach(self, aws: LocalAws, estate: Estate, canaries: Sequence[CanaryArns] = ()) -> None:
        """Answer from what `aws` runs for the services of `estate`; `canaries` are the
        blue/green pairs it holds, whose traffic `start_traffic()` reports."""
        self._aws = aws
        self._versions = EcsVersions(aws, estate, canaries)
        self._traffic = AlbTraffic(aws, estate, self._versions, canaries, mode_of=self.mode_of)
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

    @property
    def target_groups(self) -> list[ServiceArns]:
        """Each service's own target group, whose traffic is reported (once traffic started)."""
        return self._traffic.services if self._traffic is not None else []

    async def start_traffic(self) -> None:
        """Report the canaries' traffic (and register their targets) every second, until
        `close()`; the first tick has run when this returns."""
        if self._traffic is None:
            raise RuntimeError("DemoServices sends traffic only once attach() has run.")
        await asyncio.to_thread(self._traffic.tick)
        self._ticker = asyncio.create_task(self._tick_on(self._traffic))

    async def traffic_until(self, when: datetime) -> None:
        """Report the traffic of every tick up to `when` not reported yet (the first: `when`
        itself), and register targets: for a sandbox on virtual time, whose clock calls this
        each time it moves, instead of `start_traffic()`'s ticks in real seconds."""
        if self._traffic is None:
            raise RuntimeError("DemoServices sends traffic only once attach() has run.")
        try:
            await asyncio.to_thread(self._traffic.catch_up, when)
        except Exception:
            log.exception("the canaries' traffic tick failed")

    async def stop_traffic(self) -> None:
        """Stop reporting traffic, once the tick under way (if any) has finished."""
        self._stop_traffic.set()
        if self._ticker is not None:
            await self._ticker
            self._ticker = None

    async def _tick_on(self, traffic: AlbTraffic) -> None:
        while not self._stop_traffic.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_traffic.wait(), TRAFFIC_EVERY_S)
            if self._stop_traffic.is_set():
                return
            try:
                await asyncio.to_thread(traffic.tick)
            except Exception:
                # The sandbox goes on without a tick's figures; the bot's gate waits for data.
                log.exception("the canaries' traffic tick failed")

    async def close(self) -> None:
        self._closing.set()
        await self.stop_traffic()
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

    async def snapshot(self, environment: str) -> Snapshot:
        """ECS's services and the canaries' weights in `environment`."""
        if self._versions is None:
            raise RuntimeError("DemoServices answers only once attach() has run.")
        return await asyncio.to_thread(self._versions.snapshot, environment)

    async def running(self, environment: str) -> dict[str, str | None]:
        """Each service's running version in `environment`, from ECS (for a canary: the
        version of the colour taking the traffic)."""
        if self._versions is None:
            raise RuntimeError("DemoServices answers only once attach() has run.")
        return await asyncio.to_thread(self._versions.running, environment)

    async def record_keys(self) -> list[str]:
        """The deployment records the bot wrote to the local AWS, newest first."""
        if self._aws is None or self._estate is None or not self._estate.buckets:
            return []
        return await asyncio.to_thread(self._aws.record_keys, self._estate)

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
        name = request.match_info["service"]
        path = request.match_info["path"]
        estate = self._estate
        if estate is None or not any(c.environment == environment for c in estate.clusters):
            return web.json_response({"error": f"no environment {environment}"}, status=404)
        service, version = await self._version_of(estate, environment, name)
        if service is None:
            return web.json_response({"error": f"no service {name}"}, status=404)
        mode = self.mode_of(service, version)
        status = 503 if mode is Mode.UNHEALTHY else 200
        if mode is Mode.SLOW:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), SLOW_ANSWER_S)
        self.answers[(environment, service)] = Answer(path, status, version)
        self.on_change()
        body = {
            "service": name,
            "environment": environment,
            "version": version,
            "status": "ok" if status == 200 else "failing",
        }
        return web.json_response(body, status=status)

    async def _version_of(
        self, estate: Estate, environment: str, name: str
    ) -> tuple[str | None, str | None]:
        """(service, version) that `name` reaches: a service (a canary's live colour) or one
        colour of a canary (`auth-svc-green`); (None, None) when it is neither."""
        if any(s.name == name for s in estate.services):
            return name, (await self.running(environment)).get(name)
        found = estate.ecs_services(environment).get(name)
        if found is None or found[1] is None:
            return None, None
        return found[0].name, (await self.snapshot(environment)).versions.get(name)
