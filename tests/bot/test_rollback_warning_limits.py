"""The database warning of a rollback that takes back many migrating deploys, on the requester's
question and on the approvers' plan card, at its largest: within Slack's limits."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.deploy.views import deploy_card
from bot.rollback.views import rollback_prompt
from commands.rollback.replies import RollbackPrompt
from sandbox.slack.limits import check_message_blocks
from store.deploy.models import (
    Deployment,
    DeploymentId,
    DeploymentState,
    RunKind,
    Target,
    UndoneMigrations,
)

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
SERVICES = tuple(f"service-with-a-long-name-{i:03d}" for i in range(200))


def rollback_run() -> Deployment:
    return Deployment(
        id=DeploymentId("1700000000-abc123"),
        environment="production",
        requested_by="UONCALL",
        version=None,
        state=DeploymentState.AWAITING_APPROVAL,
        stage=None,
        required_approvals=2,
        channel_id="CDEPLOYS",
        message_ts=None,
        created_at=T0,
        updated_at=T0,
        approval_due_at=T0,
        started_at=None,
        finished_at=None,
        error=None,
        targets=tuple(
            Target(service=s, current_version="v1.3.0", target_version="v1.2.0") for s in SERVICES
        ),
        kind=RunKind.ROLLBACK,
        reason="<!channel> <https://x|y> " + "x" * 2900,
        # Fifty deploys, each of which migrated four services.
        undoes_migrations=tuple(
            UndoneMigrations(deployment_id=f"17000{i:05d}-abcdef", services=SERVICES[i : i + 4])
            for i in range(50)
        ),
    )


def test_the_requesters_question_stays_within_slacks_limits_and_keeps_the_restore_hint() -> None:
    _text, blocks = rollback_prompt(RollbackPrompt(rollback_run()))

    check_message_blocks(blocks)
    assert "/deploy restore-db 1700000000-abcdef" in str(blocks)
    assert "<!channel>" not in str(blocks)


def test_the_approvers_plan_card_stays_within_slacks_limits_and_keeps_the_restore_hint() -> None:
    _text, blocks = deploy_card(rollback_run(), confirm_buttons=True)

    check_message_blocks(blocks)
    assert "The database will not go back with the code." in str(blocks)
    assert "/deploy restore-db 1700000000-abcdef" in str(blocks)
    assert "<!channel>" not in str(blocks)
