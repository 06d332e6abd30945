"""A local AWS for the sandbox: a moto server on 127.0.0.1, seeded from the sandbox's config.

`Estate` is what the config describes (clusters, services, image repositories); each seed step
creates one kind of resource in moto from it. Later features add a step to `SEEDS` (load
balancers and target groups for canaries, a database, a bucket) as they are built.
The state lives as long as the server: nothing is written to disk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import boto3
from moto.server import ThreadedMotoServer

from sandbox.environment import ACCESS_KEY, SECRET_KEY, TASKS_PER_SERVICE

# Versions each repository holds; staging runs the newer one, production the older, so
# `/deploy production all` has something to promote and v1.4.0 is there to try next.
VERSIONS: Final = ("v1.1.0", "v1.2.0", "v1.3.0", "v1.4.0")
RUNNING: Final = {"staging": "v1.3.0", "production": "v1.2.0"}
DEFAULT_RUNNING: Final = "v1.2.0"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cluster:
    environment: str
    name: str
    region: str


@dataclass(frozen=True)
class EcsService:
    name: str
    ecs_service: str
    container: str
    repository: str  # the image without its tag: registry/repository

    @property
    def repository_name(self) -> str:
        """The ECR repository name (`skillancer/auth-svc`), without the registry host."""
        host, _, name = self.repository.partition("/")
        return name if "." in host else self.repository


@dataclass(frozen=True)
class Estate:
    """What the sandbox's AWS holds: each environment's cluster and the services in each."""

    clusters: tuple[Cluster, ...]
    services: tuple[EcsService, ...]
    running: Mapping[str, str]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Estate:
        clusters = tuple(
            Cluster(name, str(env["cluster"]), str(env.get("region", "us-east-1")))
            for name, env in config["environments"].items()
        )
        services = tuple(
            EcsService(
                name,
                str(svc.get("ecs_service", name)),
                str(svc.get("container", name)),
                str(svc.get("image") or f"sandbox/{name}"),
            )
            for name, svc in config["services"].items()
        )
        running = {c.environment: RUNNING.get(c.environment, DEFAULT_RUNNING) for c in clusters}
        return cls(clusters, services, running)

    def family(self, cluster: Cluster, service: EcsService) -> str:
        return f"{cluster.environment}-{service.name}"


Clients = Callable[[str, str], Any]  # (service name, region) -> a boto3 client on moto


def seed_ecr(estate: Estate, client: Clients) -> None:
    """One repository per service with an image for each of `VERSIONS`."""
    for region in {c.region for c in estate.clusters}:
        ecr = client("ecr", region)
        for svc in estate.services:
            ecr.create_repository(repositoryName=svc.repository_name)
            for version in VERSIONS:
                ecr.put_image(
                    repositoryName=svc.repository_name,
                    imageManifest=_manifest(svc.repository_name, version),
                    imageTag=version,
                )


def seed_ecs(estate: Estate, client: Clients) -> None:
    """Each environment's cluster, and each service on a task definition of its version."""
    for cluster in estate.clusters:
        ecs = client("ecs", cluster.region)
        ecs.create_cluster(clusterName=cluster.name)
        for svc in estate.services:
            version = estate.running[cluster.environment]
            task_definition = ecs.register_task_definition(
                family=estate.family(cluster, svc),
                containerDefinitions=[
                    {
                        "name": svc.container,
                        "image": f"{svc.repository}:{version}",
                        "memory": 512,
                        "essential": True,
                        "portMappings": [{"containerPort": 3000}],
                    },
                    {
                        "name": "log-router",
                        "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:2",
                        "memory": 128,
                        "essential": False,
                    },
                ],
            )["taskDefinition"]["taskDefinitionArn"]
            ecs.create_service(
                cluster=cluster.name,
                serviceName=svc.ecs_service,
                taskDefinition=task_definition,
                desiredCount=TASKS_PER_SERVICE,
            )


Seed = Callable[[Estate, Clients], None]
# In order. Canary load balancers and target groups, a database and a bucket come here once
# the features that use them exist.
SEEDS: Final[tuple[Seed, ...]] = (seed_ecr, seed_ecs)


def _manifest(repository: str, version: str) -> str:
    digest = hashlib.sha256(f"{repository}:{version}".encode()).hexdigest()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 1024,
                "digest": f"sha256:{digest}",
            },
            "layers": [],
        }
    )


class LocalAws:
    """A moto server on a free port of 127.0.0.1, in a thread of this process.

    `start()` serves it, `seed(estate)` fills it, `close()` stops it. Moto's ECS reports running
    tasks only when `MOTO_ECS_SERVICE_RUNNING` is set while services are created: the caller's
    environment must have it (see `sandbox.environment`).
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._server = ThreadedMotoServer(ip_address=host, port=0, verbose=False)
        self._endpoint: str | None = None

    @property
    def endpoint(self) -> str:
        if self._endpoint is None:
            raise RuntimeError("LocalAws has no address until start() has run.")
        return self._endpoint

    def start(self) -> None:
        # werkzeug logs every request moto serves at INFO.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self._endpoint = f"http://{host}:{port}"
        # moto's backends are process-wide: begin from nothing, whatever ran before.
        reset = self.endpoint + "/moto-api/reset"
        request = urllib.request.Request(reset, method="POST")  # noqa: S310 - our moto server
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - our own moto server
            pass

    def close(self) -> None:
        if self._endpoint is not None:
            self._server.stop()
            self._endpoint = None

    def client(self, service: str, region: str) -> Any:
        """A boto3 client on this server, with moto's dummy credentials."""
        return boto3.session.Session().client(
            service,  # type: ignore[call-overload]
            region_name=region,
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def seed(self, estate: Estate, seeds: tuple[Seed, ...] = SEEDS) -> None:
        for step in seeds:
            step(estate, self.client)
        log.info(
            "seeded moto: %d services in %d clusters", len(estate.services), len(estate.clusters)
        )
