"""A local AWS for the sandbox: a moto server on 127.0.0.1, seeded from the sandbox's config.

`Estate` is what the config describes (clusters, services, image repositories, the canaries'
blue/green pairs, the records bucket); each seed step creates one kind of resource in moto from
it: ECR images, a VPC with an ALB, target groups and weighted listeners, ECS services, an S3
bucket. moto does not register ECS tasks in target groups: `register_targets` does it, as ECS
would. The state lives as long as the server: nothing is written to disk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import boto3
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

from sandbox.environment import ACCESS_KEY, SECRET_KEY, TASKS_PER_SERVICE

# Versions each repository holds; staging runs the newer one, production the older, so
# `/deploy production all` has something to promote and v1.4.0 is there to try next.
VERSIONS: Final = ("v1.1.0", "v1.2.0", "v1.3.0", "v1.4.0")
RUNNING: Final = {"staging": "v1.3.0", "production": "v1.2.0"}
DEFAULT_RUNNING: Final = "v1.2.0"
COLOURS: Final = ("blue", "green")
CONTAINER_PORT: Final = 3000
ELB_NAME_MAX: Final = 32  # AWS: load balancer and target group names are at most 32 characters

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
class Canary:
    """A blue/green pair behind one weighted listener: blue live, green idle at first."""

    environment: str
    service: str

    def ecs_service(self, colour: str) -> str:
        return f"{self.service}-{colour}"

    def target_group(self, colour: str) -> str:
        return f"{self.service}-{colour}"[:ELB_NAME_MAX]

    def colour_of(self, ecs_service: str) -> str | None:
        return next((c for c in COLOURS if self.ecs_service(c) == ecs_service), None)


@dataclass(frozen=True)
class CanaryArns:
    """What moto named a canary's listener and target groups, for the bot's config."""

    canary: Canary
    listener: str
    target_groups: Mapping[str, str]  # colour -> target group ARN


@dataclass(frozen=True)
class ServiceArns:
    """A service's own target group in one environment (a canary has two: `CanaryArns`), and
    its environment's ALB as CloudWatch names it (`app/<name>/<id>`)."""

    environment: str
    service: str
    load_balancer: str
    target_group: str


@dataclass(frozen=True)
class Estate:
    """What the sandbox's AWS holds: each environment's cluster and the services in each, the
    canaries among them, and the buckets that keep deployment records."""

    clusters: tuple[Cluster, ...]
    services: tuple[EcsService, ...]
    running: Mapping[str, str]
    canaries: tuple[Canary, ...] = ()
    buckets: tuple[tuple[str, str], ...] = ()  # (region, bucket)

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, canaries: Sequence[tuple[str, str]] = ()
    ) -> Estate:
        """`canaries` are (environment, service) pairs to seed as blue/green pairs."""
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
        buckets = tuple(
            (str(env.get("region", "us-east-1")), str(env["records"]["bucket"]))
            for env in config["environments"].values()
            if env.get("records")
        )
        return cls(clusters, services, running, tuple(Canary(e, s) for e, s in canaries), buckets)

    def family(self, cluster: Cluster, service: EcsService) -> str:
        return f"{cluster.environment}-{service.name}"

    def cluster(self, environment: str) -> Cluster:
        return next(c for c in self.clusters if c.environment == environment)

    def service(self, name: str) -> EcsService:
        return next(s for s in self.services if s.name == name)

    def canary(self, environment: str, service: str) -> Canary | None:
        return next(
            (c for c in self.canaries if (c.environment, c.service) == (environment, service)),
            None,
        )

    def ecs_services(self, environment: str) -> dict[str, tuple[EcsService, str | None]]:
        """ECS service name -> (the service, its colour or None), as ECS holds them there."""
        found: dict[str, tuple[EcsService, str | None]] = {}
        for svc in self.services:
            canary = self.canary(environment, svc.name)
            if canary is None:
                found[svc.ecs_service] = (svc, None)
            else:
                found.update({canary.ecs_service(c): (svc, c) for c in COLOURS})
        return found


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


def seed_load_balancers(estate: Estate, client: Clients) -> None:
    """Per environment: a VPC with two subnets and an ALB; per canary two target groups (type
    `ip`, as `awsvpc` tasks need) and a listener forwarding blue 100, green 0; per other
    service one target group, whose traffic the demo services report."""
    for cluster in estate.clusters:
        canaries = [c for c in estate.canaries if c.environment == cluster.environment]
        ec2 = client("ec2", cluster.region)
        elb = client("elbv2", cluster.region)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(
                VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{cluster.region}{az}"
            )["Subnet"]["SubnetId"]
            for i, az in ((1, "a"), (2, "b"))
        ]
        lb = elb.create_load_balancer(Name=_alb_name(cluster), Subnets=subnets)
        lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
        for port, canary in enumerate(canaries, start=8000):
            groups = {
                colour: elb.create_target_group(
                    Name=canary.target_group(colour),
                    Protocol="HTTP",
                    Port=CONTAINER_PORT,
                    VpcId=vpc,
                    TargetType="ip",
                )["TargetGroups"][0]["TargetGroupArn"]
                for colour in COLOURS
            }
            elb.create_listener(
                LoadBalancerArn=lb_arn,
                Protocol="HTTP",
                Port=port,
                DefaultActions=[
                    {
                        "Type": "forward",
                        "ForwardConfig": {
                            "TargetGroups": [
                                {"TargetGroupArn": groups["blue"], "Weight": 100},
                                {"TargetGroupArn": groups["green"], "Weight": 0},
                            ]
                        },
                    }
                ],
            )
        for svc in estate.services:
            if estate.canary(cluster.environment, svc.name) is None:
                elb.create_target_group(
                    Name=_service_group(cluster, svc),
                    Protocol="HTTP",
                    Port=CONTAINER_PORT,
                    VpcId=vpc,
                    TargetType="ip",
                )


def seed_ecs(estate: Estate, client: Clients) -> None:
    """Each environment's cluster, and each service on a task definition of its version; a
    canary as two services registered to their target groups, blue running, green at 0."""
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
                        "portMappings": [{"containerPort": CONTAINER_PORT}],
                    },
                    {
                        "name": "log-router",
                        "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:2",
                        "memory": 128,
                        "essential": False,
                    },
                ],
            )["taskDefinition"]["taskDefinitionArn"]
            canary = estate.canary(cluster.environment, svc.name)
            if canary is None:
                ecs.create_service(
                    cluster=cluster.name,
                    serviceName=svc.ecs_service,
                    taskDefinition=task_definition,
                    desiredCount=TASKS_PER_SERVICE,
                )
                continue
            groups = _target_groups(client("elbv2", cluster.region), canary)
            for colour in COLOURS:
                ecs.create_service(
                    cluster=cluster.name,
                    serviceName=canary.ecs_service(colour),
                    taskDefinition=task_definition,
                    desiredCount=TASKS_PER_SERVICE if colour == "blue" else 0,
                    loadBalancers=[
                        {
                            "targetGroupArn": groups[colour],
                            "containerName": svc.container,
                            "containerPort": CONTAINER_PORT,
                        }
                    ],
                )


def seed_buckets(estate: Estate, client: Clients) -> None:
    """The buckets the environments keep their deployment records in."""
    for region, bucket in estate.buckets:
        s3 = client("s3", region)
        if region == "us-east-1":  # S3 refuses us-east-1 as a location constraint
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
            )


def register_targets(estate: Estate, client: Clients) -> None:
    """What ECS does and moto does not: keep as many healthy IP targets in each canary colour's
    target group as its service wants tasks (0 when it is scaled down)."""
    for canary in estate.canaries:
        cluster = estate.cluster(canary.environment)
        ecs = client("ecs", cluster.region)
        elb = client("elbv2", cluster.region)
        names = [canary.ecs_service(c) for c in COLOURS]
        described = ecs.describe_services(cluster=cluster.name, services=names)["services"]
        for svc in described:
            for lb in svc.get("loadBalancers", []):
                _register(elb, lb["targetGroupArn"], wanted=int(svc["desiredCount"]))


def _register(elb: Any, target_group: str, *, wanted: int) -> None:
    out = elb.describe_target_health(TargetGroupArn=target_group)
    ids = sorted(d["Target"]["Id"] for d in out["TargetHealthDescriptions"])
    if len(ids) > wanted:
        elb.deregister_targets(
            TargetGroupArn=target_group, Targets=[{"Id": i} for i in ids[wanted:]]
        )
    elif len(ids) < wanted:
        free = (f"10.0.1.{n}" for n in range(10, 250) if f"10.0.1.{n}" not in ids)
        fresh = [{"Id": next(free), "Port": CONTAINER_PORT} for _ in range(wanted - len(ids))]
        elb.register_targets(TargetGroupArn=target_group, Targets=fresh)


def canary_arns(estate: Estate, client: Clients) -> list[CanaryArns]:
    """Each canary's listener and target group ARNs, read back from moto by name."""
    found = []
    for canary in estate.canaries:
        cluster = estate.cluster(canary.environment)
        elb = client("elbv2", cluster.region)
        groups = _target_groups(elb, canary)
        lb = elb.describe_load_balancers(Names=[_alb_name(cluster)])["LoadBalancers"][0]
        listeners = elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
        listener = next(
            item["ListenerArn"]
            for item in listeners
            if {g["TargetGroupArn"] for a in item["DefaultActions"] for g in _forwards(a)}
            == set(groups.values())
        )
        found.append(CanaryArns(canary, listener, groups))
    return found


def service_arns(estate: Estate, client: Clients) -> list[ServiceArns]:
    """Each service's own target group (every service but the canaries), read back by name."""
    found = []
    for cluster in estate.clusters:
        elb = client("elbv2", cluster.region)
        lb = elb.describe_load_balancers(Names=[_alb_name(cluster)])["LoadBalancers"][0]
        dimension = "/".join(lb["LoadBalancerArn"].split(":", 5)[-1].split("/")[1:4])
        plain = [s for s in estate.services if estate.canary(cluster.environment, s.name) is None]
        if not plain:
            continue
        names = [_service_group(cluster, s) for s in plain]
        groups = elb.describe_target_groups(Names=names)["TargetGroups"]
        by_name = {g["TargetGroupName"]: g["TargetGroupArn"] for g in groups}
        found += [
            ServiceArns(cluster.environment, s.name, dimension, by_name[_service_group(cluster, s)])
            for s in plain
        ]
    return found


def _service_group(cluster: Cluster, service: EcsService) -> str:
    return f"{cluster.environment}-{service.name}"[:ELB_NAME_MAX]


def _alb_name(cluster: Cluster) -> str:
    return f"{cluster.environment}-alb"[:ELB_NAME_MAX]


def _target_groups(elb: Any, canary: Canary) -> dict[str, str]:
    names = [canary.target_group(c) for c in COLOURS]
    groups = elb.describe_target_groups(Names=names)["TargetGroups"]
    by_name = {g["TargetGroupName"]: g["TargetGroupArn"] for g in groups}
    return {c: by_name[canary.target_group(c)] for c in COLOURS}


def _forwards(action: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((action.get("ForwardConfig") or {}).get("TargetGroups") or [])


Seed = Callable[[Estate, Clients], None]
# In order: target groups exist before the ECS services registered to them. The database
# (RDS) comes here once the sandbox configures backups.
SEEDS: Final[tuple[Seed, ...]] = (
    seed_ecr,
    seed_load_balancers,
    seed_ecs,
    register_targets,
    seed_buckets,
)


def _manifest(repository: str, version: str) -> str:
    """An image manifest of its own for each image: ECR (moto) digests an image from its
    layers, so each gets one layer made from its name."""
    digest = hashlib.sha256(f"{repository}:{version}".encode()).hexdigest()
    layer = hashlib.sha256(f"{repository}:{version}:layer".encode()).hexdigest()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 1024,
                "digest": f"sha256:{digest}",
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 2048,
                    "digest": f"sha256:{layer}",
                }
            ],
        }
    )


class LocalAws:
    """A moto server on a free port of 127.0.0.1, in a thread of this process.

    `start()` serves it, `seed(estate)` fills it, `close()` stops it. Moto's ECS reports running
    tasks only when `MOTO_ECS_SERVICE_RUNNING` is set while services are created: the caller's
    environment must have it (see `sandbox.environment`).
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._server = _QuickStopMotoServer(ip_address=host, port=0, verbose=False)
        self._endpoint: str | None = None
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

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
            self._clients.clear()

    def client(self, service: str, region: str) -> Any:
        """A boto3 client on this server, with moto's dummy credentials; made once per service
        and region (clients are thread-safe once made, sessions are not)."""
        with self._lock:
            key = (service, region)
            if key not in self._clients:
                self._clients[key] = boto3.session.Session().client(
                    service,  # type: ignore[call-overload]
                    region_name=region,
                    endpoint_url=self.endpoint,
                    aws_access_key_id=ACCESS_KEY,
                    aws_secret_access_key=SECRET_KEY,
                )
            return self._clients[key]

    def seed(self, estate: Estate, seeds: tuple[Seed, ...] = SEEDS) -> list[CanaryArns]:
        """Run the seed steps; the canaries' ARNs, which the bot's config needs."""
        for step in seeds:
            step(estate, self.client)
        log.info(
            "seeded moto: %d services in %d clusters, %d canaries",
            len(estate.services),
            len(estate.clusters),
            len(estate.canaries),
        )
        return canary_arns(estate, self.client) if estate.canaries else []

    def record_keys(self, estate: Estate) -> list[str]:
        """The keys of every records bucket, newest first (blocking: use a thread)."""
        keys: list[tuple[Any, str]] = []
        for region, bucket in estate.buckets:
            out = self.client("s3", region).list_objects_v2(Bucket=bucket)
            keys += [(o["LastModified"], o["Key"]) for o in out.get("Contents", [])]
        return [key for _, key in sorted(keys, reverse=True)]


class _QuickStopMotoServer(ThreadedMotoServer):
    """moto's threaded server (moto is pinned), polling for a stop every 50 ms: werkzeug looks
    for one only between polls, every 0.5 s by default, and each sandbox stop waited for it."""

    def _server_entry(self) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(self._ip_address, self._port, app, True)
        self._server_ready_event.set()
        self._server.serve_forever(poll_interval=0.05)
