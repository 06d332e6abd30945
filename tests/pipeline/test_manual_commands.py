"""The commands a person runs by hand when the bot could not undo a run (on the card of a
failed rollback, and in the rollback instructions kept in S3): a rolling service goes back
with `update-service`; a canary goes back on its listener, never to an ECS service that
does not exist (`auth-svc` is `auth-svc-blue` and `auth-svc-green` there)."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.kernel.config import Config
from pipeline.records import manual_command, rollback_instructions
from store.deploy.models import Deployment, DeploymentId, DeploymentState, RunKind, Target

ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012"
LISTENER = f"{ARN}:listener/app/prod/50dc6c495c0c9188/f2f7dc8efc522ab2"
BLUE_TG = f"{ARN}:targetgroup/auth-blue/73e2d6bc24d8a067"
GREEN_TG = f"{ARN}:targetgroup/auth-green/943f017f100becff"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

CONFIG = Config.model_validate(
    {
        "environments": {"production": {"cluster": "prod", "region": "us-east-1"}},
        "services": {
            "api-gateway": {},
            "auth-svc": {
                "canary": {
                    "production": {
                        "listener": LISTENER,
                        "blue": {
                            "ecs_service": "auth-svc-blue",
                            "target_group": BLUE_TG,
                            "health_url": "http://blue.internal",
                        },
                        "green": {
                            "ecs_service": "auth-svc-green",
                            "target_group": GREEN_TG,
                            "health_url": "http://green.internal",
                        },
                    }
                }
            },
        },
    }
)
ENV = CONFIG.environment("production")


def _run(kind: RunKind = RunKind.DEPLOY) -> Deployment:
    return Deployment(
        id=DeploymentId("1795000000-abc123"),
        environment="production",
        requested_by="UDEV",
        version="v1.3.0",
        state=DeploymentState.ROLLBACK_FAILED,
        kind=kind,
        stage=None,
        required_approvals=0,
        channel_id="CDEPLOYS",
        message_ts="1.0",
        approval_due_at=None,
        started_at=NOW,
        error="auth-svc failed its health check",
        created_at=NOW,
        updated_at=NOW,
        finished_at=NOW,
        targets=(
            Target(
                service="api-gateway",
                current_version="v1.2.0",
                target_version="v1.3.0",
                previous_task_def="arn:aws:ecs:us-east-1:123456789012:task-definition/api:4",
                new_task_def="arn:aws:ecs:us-east-1:123456789012:task-definition/api:5",
            ),
            Target(
                service="auth-svc",
                current_version="v1.2.0",
                target_version="v1.3.0",
                previous_task_def="arn:aws:ecs:us-east-1:123456789012:task-definition/auth:7",
                new_task_def="arn:aws:ecs:us-east-1:123456789012:task-definition/auth:8",
                canary_colour="green",
            ),
        ),
    )


def test_a_rolling_service_goes_back_to_its_previous_revision() -> None:
    run = _run()
    command = manual_command(run, run.targets[0], env=ENV, svc=CONFIG.service("api-gateway"))

    assert command == (
        "aws ecs update-service --region us-east-1 --cluster prod --service api-gateway "
        "--task-definition arn:aws:ecs:us-east-1:123456789012:task-definition/api:4"
    )


def test_a_canary_goes_back_on_its_listener_to_the_old_colour() -> None:
    run = _run()
    command = manual_command(run, run.targets[1], env=ENV, svc=CONFIG.service("auth-svc"))

    assert command.startswith(
        f"aws elbv2 modify-listener --region us-east-1 --listener-arn {LISTENER}"
    )
    assert (
        f"{{TargetGroupArn={BLUE_TG},Weight=100}},{{TargetGroupArn={GREEN_TG},Weight=0}}" in command
    )
    assert "update-service" not in command


def test_a_failed_rollback_run_of_a_canary_is_finished_toward_the_colour_it_was_going_to() -> None:
    run = _run(RunKind.ROLLBACK)
    command = manual_command(run, run.targets[1], env=ENV, svc=CONFIG.service("auth-svc"))

    assert (
        f"{{TargetGroupArn={GREEN_TG},Weight=100}},{{TargetGroupArn={BLUE_TG},Weight=0}}" in command
    )


def test_the_rollback_instructions_name_no_ecs_service_that_does_not_exist() -> None:
    steps = rollback_instructions(_run(), env=ENV, services=CONFIG.services)["steps"]

    commands = {s["service"]: s["command"] for s in steps}
    assert "--service api-gateway " in commands["api-gateway"]
    assert "modify-listener" in commands["auth-svc"]
    assert "--service auth-svc " not in commands["auth-svc"]
