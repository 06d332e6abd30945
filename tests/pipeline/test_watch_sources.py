"""Where the watch reads a service: a canary's series are the colour its run left the traffic
on, not the ECS service the config names for it (which a blue/green pair does not run)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.kernel.config import Config
from pipeline.watch import Source, source_of
from store.deploy.models import Deployment, DeploymentId, DeploymentState, RunKind, Target
from tests.conftest import config_dict
from tests.fakes.health import FakeHealth

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012"
LISTENER = f"{ARN}:listener/app/prod-alb/50dc6c495c0c9188/f2f7dc8efc522ab2"
GROUPS = {
    c: f"{ARN}:targetgroup/auth-{c}/73e2d6bc24d8a06{i}" for i, c in enumerate(("blue", "green"))
}
NAMED = f"{ARN}:targetgroup/api/73e2d6bc24d8a067"


@pytest.fixture
def config(health: FakeHealth) -> Config:
    data = config_dict(health)
    data["services"]["auth-svc"]["canary"] = {
        "production": {
            "listener": LISTENER,
            **{
                c: {
                    "ecs_service": f"auth-svc-{c}",
                    "target_group": GROUPS[c],
                    "health_url": health.url(f"auth-svc-{c}"),
                }
                for c in GROUPS
            },
        }
    }
    data["environments"]["production"]["watch"] = {
        "target_groups": {"api-gateway": {"load_balancer": "app/prod-alb/1", "target_group": NAMED}}
    }
    return Config.model_validate(data)


def _run(*targets: Target, kind: RunKind = RunKind.DEPLOY) -> Deployment:
    return Deployment(
        id=DeploymentId("1700000000-abc123"),
        environment="production",
        requested_by="UDEV",
        version="v1.3.0",
        state=DeploymentState.SUCCEEDED,
        stage=None,
        required_approvals=2,
        channel_id="CDEPLOYS",
        message_ts=None,
        created_at=T0,
        updated_at=T0,
        approval_due_at=None,
        started_at=T0,
        finished_at=T0,
        error=None,
        targets=targets,
        kind=kind,
    )


def _target(service: str, colour: str | None = None) -> Target:
    return Target(
        service=service, current_version="v1.2.0", target_version="v1.3.0", canary_colour=colour
    )


def test_a_canary_is_read_on_the_colour_its_deploy_left_the_traffic_on(config: Config) -> None:
    run = _run(_target("auth-svc", "green"), _target("api-gateway"))

    assert source_of(config, run, "auth-svc") == Source(
        "auth-svc-green", "app/prod-alb/50dc6c495c0c9188", GROUPS["green"]
    )
    assert source_of(config, run, "api-gateway") == Source("api-gateway", "app/prod-alb/1", NAMED)


def test_a_rollback_of_a_canary_is_read_on_the_colour_it_went_back_to(config: Config) -> None:
    run = _run(_target("auth-svc", "blue"), kind=RunKind.ROLLBACK)

    assert source_of(config, run, "auth-svc").ecs_service == "auth-svc-blue"
    assert source_of(config, run, "auth-svc").target_group == GROUPS["blue"]


def test_a_service_without_a_target_group_is_read_on_ecs_alone(config: Config) -> None:
    run = _run(_target("market-svc"))

    assert source_of(config, run, "market-svc") == Source("market-svc")
