"""Blue/green canary estates in moto: a VPC, one ALB, and per service two target groups, a
listener forwarding to them (blue live at 100) and two ECS services registered to them.

moto does not register ECS tasks in target groups, so each colour's group gets as many IP
targets as its service's desired count (they report `healthy`), as ECS would register them.
CloudWatch has no traffic either: `traffic()` puts the request and 5xx counts a test wants.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.kernel.config.canary import target_group_dimension
from tests.fakes.ecs_world import REGION, EcsWorld, aws_client

_ips = itertools.count(10)


@dataclass
class CanaryService:
    name: str
    listener: str
    load_balancer: str
    target_groups: dict[str, str]
    ecs_services: dict[str, str]


class CanaryWorld:
    """Canary services for one environment, on top of an `EcsWorld`."""

    def __init__(self, ecs: EcsWorld, env: str, *, endpoint_url: str | None = None) -> None:
        self.ecs = ecs
        self.env = env
        self.ec2: Any = aws_client("ec2", endpoint_url=endpoint_url)
        self.elb: Any = aws_client("elbv2", endpoint_url=endpoint_url)
        self.cw: Any = aws_client("cloudwatch", endpoint_url=endpoint_url)
        vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.vpc = vpc
        subnets = [
            self.ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=az)[
                "Subnet"
            ]["SubnetId"]
            for i, az in ((1, f"{REGION}a"), (2, f"{REGION}b"))
        ]
        lb = self.elb.create_load_balancer(Name=f"{env}-alb", Subnets=subnets)
        self.load_balancer_arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
        self.services: dict[str, CanaryService] = {}
        self._port = itertools.count(8000)

    def add(self, service: str, version: str, *, desired: int = 2) -> CanaryService:
        """A canary service whose blue colour runs `version` and takes all the traffic."""
        groups = {
            colour: self.elb.create_target_group(
                Name=f"{service}-{colour}"[:32],
                Protocol="HTTP",
                Port=80,
                VpcId=self.vpc,
                TargetType="ip",
            )["TargetGroups"][0]["TargetGroupArn"]
            for colour in ("blue", "green")
        }
        listener = self.elb.create_listener(
            LoadBalancerArn=self.load_balancer_arn,
            Protocol="HTTP",
            Port=next(self._port),
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
        )["Listeners"][0]["ListenerArn"]
        names = {colour: f"{service}-{colour}" for colour in ("blue", "green")}
        self.ecs.add_service(self.env, names["blue"], version, desired=desired, container=service)
        self.ecs.add_service(self.env, names["green"], version, desired=0, container=service)
        self.register(groups["blue"], desired)
        found = CanaryService(
            name=service,
            listener=listener,
            load_balancer="/".join(self.load_balancer_arn.split(":", 5)[-1].split("/")[1:4]),
            target_groups=groups,
            ecs_services=names,
        )
        self.services[service] = found
        return found

    def register(self, target_group: str, count: int) -> None:
        """Register `count` healthy IP targets, as ECS does for a service's tasks."""
        if count:
            self.elb.register_targets(
                TargetGroupArn=target_group,
                Targets=[
                    {"Id": f"10.0.1.{next(_ips) % 250 + 2}", "Port": 80} for _ in range(count)
                ],
            )

    def weights(self, service: str) -> dict[str, int]:
        """Colour -> weight, read from the listener."""
        svc = self.services[service]
        action = self.elb.describe_listeners(ListenerArns=[svc.listener])["Listeners"][0][
            "DefaultActions"
        ][0]
        by_arn = {g["TargetGroupArn"]: g["Weight"] for g in action["ForwardConfig"]["TargetGroups"]}
        return {colour: by_arn.get(arn, 0) for colour, arn in svc.target_groups.items()}

    def traffic(
        self,
        service: str,
        colour: str,
        *,
        requests: float,
        errors: float,
        at: datetime,
        latency_s: float | None = None,
    ) -> None:
        """CloudWatch data points for a colour's target group at `at`."""
        self.put(
            self.datapoints(
                service, colour, requests=requests, errors=errors, at=at, latency_s=latency_s
            )
        )

    def put(self, data: list[dict[str, Any]]) -> None:
        """Data points (of `datapoints`) into CloudWatch, in as few calls as it allows."""
        for start in range(0, len(data), 1000):
            self.cw.put_metric_data(
                Namespace="AWS/ApplicationELB", MetricData=data[start : start + 1000]
            )

    def datapoints(
        self,
        service: str,
        colour: str,
        *,
        requests: float,
        errors: float,
        at: datetime,
        latency_s: float | None = None,
    ) -> list[dict[str, Any]]:
        """The CloudWatch data points of `traffic`, not put yet."""
        svc = self.services[service]
        dims = [
            {"Name": "TargetGroup", "Value": target_group_dimension(svc.target_groups[colour])},
            {"Name": "LoadBalancer", "Value": svc.load_balancer},
        ]
        data = [
            {"MetricName": "RequestCount", "Dimensions": dims, "Value": requests, "Timestamp": at}
        ]
        if latency_s is not None:
            data.append(
                {
                    "MetricName": "TargetResponseTime",
                    "Dimensions": dims,
                    "Value": latency_s,
                    "Timestamp": at,
                }
            )
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

    def canary_config(self, service: str, health: dict[str, str]) -> dict[str, Any]:
        """The `services.<name>.canary.<env>` table for this service."""
        svc = self.services[service]
        return {
            "listener": svc.listener,
            "blue": {
                "ecs_service": svc.ecs_services["blue"],
                "target_group": svc.target_groups["blue"],
                "health_url": health["blue"],
            },
            "green": {
                "ecs_service": svc.ecs_services["green"],
                "target_group": svc.target_groups["green"],
                "health_url": health["green"],
            },
        }
