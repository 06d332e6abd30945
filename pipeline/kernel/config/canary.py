"""The canary feature's settings: stages, cadence and the metric gate per environment, and each
canary service's blue/green setup (listener or rule, ECS services, target groups, health URLs).

A service is a canary in an environment when `services.<name>.canary.<environment>` exists;
otherwise it keeps the rolling strategy. Defaults follow seed 003 (5% for 5 minutes, 50% for 10,
100% for 15, health every 10 s) and seed 002 ("5xx errors > 1%: immediate rollback").
"""

from __future__ import annotations

import itertools
import re
from typing import Literal

from pydantic import Field, model_validator

from pipeline.kernel.config.durations import Duration, SettingsModel

_ELB_ARN = re.compile(r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:")
COLOURS = ("blue", "green")


class CanaryStage(SettingsModel):
    weight: int = Field(ge=1, le=100, description="Percent of traffic on the new revision.")
    bake_s: Duration = Field(alias="bake", description="How long the stage is watched.")


def _seed_stages() -> list[CanaryStage]:
    return [
        CanaryStage.model_validate({"weight": 5, "bake": "5m"}),
        CanaryStage.model_validate({"weight": 50, "bake": "10m"}),
        CanaryStage.model_validate({"weight": 100, "bake": "15m"}),
    ]


class CanarySettings(SettingsModel):
    """How canaries run in one environment."""

    stages: list[CanaryStage] = Field(
        default_factory=_seed_stages,
        description="Weights (1-100, ascending, the last 100) and bake times.",
    )
    check_every_s: Duration = Field(
        10.0, alias="check_every", description="Health and 5xx checks during a bake."
    )
    max_5xx_ratio: float = Field(
        0.01, ge=0, le=1, description="A stage fails when 5xx/requests of the new colour is above."
    )
    min_requests: int = Field(
        50, ge=0, description="Below this many requests in a stage, the 5xx ratio is no verdict."
    )
    slow_response_s: Duration = Field(
        5.0, alias="slow_response", description="TargetResponseTime above this warns on the card."
    )
    no_data_timeout_s: Duration = Field(
        120.0,
        alias="no_data_timeout",
        description="A stage fails when CloudWatch has no data for the new colour this long.",
    )
    ready_timeout_s: Duration = Field(
        600.0,
        alias="ready_timeout",
        description="How long the new colour may take to run and to be healthy in its group.",
    )

    @model_validator(mode="after")
    def _check(self) -> CanarySettings:
        weights = [s.weight for s in self.stages]
        if not weights:
            raise ValueError("canary.stages needs at least one stage")
        if any(b <= a for a, b in itertools.pairwise(weights)):
            raise ValueError(f"canary.stages weights must go up: {weights}")
        if weights[-1] != 100:
            raise ValueError(f"canary.stages must end at weight 100, not {weights[-1]}")
        if self.check_every_s <= 0:
            raise ValueError("canary.check_every must be more than 0s")
        return self


class Colour(SettingsModel):
    """One side of a blue/green pair: an ECS service registered to its own target group."""

    ecs_service: str = Field(min_length=1, description="This colour's ECS service.")
    target_group: str = Field(description="Target group ARN.")
    health_url: str = Field(description="This colour's own health base URL.")

    @model_validator(mode="after")
    def _check(self) -> Colour:
        if not _ELB_ARN.match(self.target_group) or ":targetgroup/" not in self.target_group:
            raise ValueError(f"target_group {self.target_group!r} is not a target group ARN")
        if not self.health_url.startswith(("http://", "https://")):
            raise ValueError("health_url must start with http:// or https://")
        return self


class CanaryTarget(SettingsModel):
    """A service's blue/green setup in one environment."""

    listener: str | None = Field(None, description="Listener ARN whose default action forwards.")
    rule: str | None = Field(None, description="Listener rule ARN, instead of a listener.")
    blue: Colour = Field(description="One colour: its ECS service, target group, health URL.")
    green: Colour = Field(description="The other colour.")

    @model_validator(mode="after")
    def _check(self) -> CanaryTarget:
        if (self.listener is None) == (self.rule is None):
            raise ValueError("set exactly one of listener and rule")
        arn = self.listener or self.rule or ""
        kind = ":listener/" if self.listener else ":listener-rule/"
        if not _ELB_ARN.match(arn) or kind not in arn:
            raise ValueError(f"{arn!r} is not a {'listener' if self.listener else 'rule'} ARN")
        if self.blue.ecs_service == self.green.ecs_service:
            raise ValueError("blue and green must be different ECS services")
        if self.blue.target_group == self.green.target_group:
            raise ValueError("blue and green must have different target groups")
        return self

    def colour(self, name: str) -> Colour:
        return self.blue if name == "blue" else self.green

    @property
    def load_balancer(self) -> str:
        """The CloudWatch `LoadBalancer` dimension (`app/<name>/<id>`), from the ARN."""
        arn = self.listener or self.rule or ""
        parts = arn.split(":", 5)[-1].split("/")
        return "/".join(parts[1:4])


class SmokeCheck(SettingsModel):
    """A request the service must answer after it takes 100% of the traffic."""

    method: Literal["GET", "HEAD", "POST"] = Field("GET", description="The HTTP method.")
    path: str = Field("/health", description="Path on the new colour's health URL.")
    expect_status: int = Field(200, ge=100, le=599, description="The status it must answer.")
    max_latency_s: Duration = Field(
        2.0, alias="max_latency", description="The longest the answer may take."
    )
    version_field: str | None = Field(
        None, description="A JSON field of the answer that must equal the deployed version."
    )

    @model_validator(mode="after")
    def _check(self) -> SmokeCheck:
        if not self.path.startswith("/"):
            raise ValueError(f"smoke path {self.path!r} must start with '/'")
        return self


def target_group_dimension(arn: str) -> str:
    """The CloudWatch `TargetGroup` dimension (`targetgroup/<name>/<id>`) of a target group."""
    return arn.split(":", 5)[-1]
