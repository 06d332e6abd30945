"""Every message and form the bot builds with buttons, at its largest: no block carries two
equal action_ids (Slack answers `invalid_blocks`; issue 16), and the local Slack takes each one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.blocks import Blocks
from bot.deploy.views import deploy_card
from bot.incident.views import (
    MAX_SUSPECT_BUTTONS,
    SUSPECT_ROLLBACK_ACTIONS,
    alert_message,
    reminder_message,
    resolve_modal,
    suspect_buttons,
    suspect_lines,
    update_modal,
)
from bot.rollback.views import rollback_prompt
from commands.rollback.usecases import RollbackPrompt
from pipeline.kernel.config import Severity
from pipeline.kernel.ports import Reminder
from sandbox.slack.limits import check_message_blocks, check_view
from store.deploy.models import (
    Deployment,
    DeploymentId,
    DeploymentState,
    RolloutStage,
    RunKind,
    StageStatus,
    Target,
    TargetStatus,
    UndoneMigrations,
)
from store.incident.models import Incident, IncidentId, IncidentStatus

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
SERVICES = 200
SEVERITY = Severity(description="Service down", response_time="Immediate", update_every="15m")


def _run(n: int = 0, **changes: Any) -> Deployment:
    run = Deployment(
        id=DeploymentId(f"1700000000-{n:06d}"),
        environment="production",
        requested_by="UDEV",
        version="v1.1.0",
        state=DeploymentState.AWAITING_APPROVAL,
        stage=None,
        required_approvals=2,
        channel_id="CDEP",
        message_ts="1700000000.000100",
        created_at=T0,
        updated_at=T0,
        approval_due_at=T0 + timedelta(hours=2),
        started_at=None,
        finished_at=None,
        error=None,
        targets=tuple(
            Target(
                service=f"svc-{i:03d}",
                current_version="v1.0.0",
                target_version="v1.1.0",
                canary_colour="green",
            )
            for i in range(SERVICES)
        ),
    )
    return run.model_copy(update=changes)


def _canary(status: StageStatus) -> Deployment:
    stage = RolloutStage(
        position=0,
        weight=5,
        bake_s=600,
        status=status,
        started_at=T0,
        held_by="UONCALL" if status is StageStatus.HELD else None,
        held_at=T0 if status is StageStatus.HELD else None,
    )
    return _run(state=DeploymentState.RUNNING, started_at=T0, stages=(stage,))


def _incident() -> Incident:
    return Incident(
        id=IncidentId("1700000000-inc001"),
        severity="p1",
        summary="logins failing",
        service=None,
        status=IncidentStatus.INVESTIGATING,
        impact="logins failing",
        action=None,
        eta="Unknown",
        commander="UCMD",
        declared_by="UCMD",
        declared_in="CGEN",
        channel_id="CWAR",
        channel_name="inc-20261122-logins-failing",
        alert_ts=None,
        announce_channel=None,
        announce_ts=None,
        opened_at=T0,
        last_update_at=T0,
        next_update_due_at=T0 + timedelta(minutes=15),
        resolved_at=None,
        resolution=None,
        follow_up=None,
    )


def _alert() -> tuple[str, Blocks]:
    suspects = [
        _run(n, state=DeploymentState.SUCCEEDED, finished_at=T0, required_approvals=0)
        for n in range(MAX_SUSPECT_BUTTONS + 5)
    ]
    lines = suspect_lines(suspects, environment="production", window_s=7200)
    return alert_message(_incident(), SEVERITY, lines, suspect_buttons(_incident(), suspects))


def _reminder(*, escalate: bool) -> tuple[str, Blocks]:
    due = Reminder(
        key="reminder:1",
        escalate=escalate,
        since_update_s=1800,
        every_s=900,
        escalate_to=tuple(f"U{i:04d}" for i in range(50)),
    )
    return reminder_message(_incident(), due)


def _rollback_prompt() -> tuple[str, Blocks]:
    undone = UndoneMigrations(deployment_id="1700000000-000009", services=("svc-000",))
    run = _run(kind=RunKind.ROLLBACK, undoes_migrations=(undone,))
    return rollback_prompt(RollbackPrompt(run, asked_despite_yes=True))


MESSAGES: dict[str, Callable[[], tuple[str, Blocks]]] = {
    "deploy card with confirm buttons": lambda: deploy_card(_run(), confirm_buttons=True),
    "deploy card in its rollback window": lambda: deploy_card(
        _run(
            state=DeploymentState.SUCCEEDED,
            required_approvals=0,
            finished_at=T0,
            rollback_deadline=T0 + timedelta(hours=1),
            targets=tuple(
                t.model_copy(update={"status": TargetStatus.HEALTHY}) for t in _run().targets
            ),
        ),
        confirm_buttons=True,
    ),
    "canary steering while it bakes": lambda: deploy_card(
        _canary(StageStatus.BAKING), confirm_buttons=True, canary_stages=3
    ),
    "canary steering while it is held": lambda: deploy_card(
        _canary(StageStatus.HELD), confirm_buttons=True, canary_stages=3
    ),
    "the wait after approval": lambda: deploy_card(
        _run(state=DeploymentState.WAITING, wait_until=T0 + timedelta(hours=1)),
        confirm_buttons=True,
        now=T0,
    ),
    "rollback prompt": _rollback_prompt,
    "incident alert with more suspects than buttons": _alert,
    "incident reminder": lambda: _reminder(escalate=False),
    "incident escalation": lambda: _reminder(escalate=True),
}

FORMS: dict[str, Callable[[], dict[str, Any]]] = {
    "post update": lambda: update_modal(_incident()),
    "resolve": lambda: resolve_modal(_incident()),
}


def _twice_in_a_block(blocks: Blocks) -> list[tuple[int, str]]:
    """(block index, action_id) for every action_id that a block holds more than once."""
    twice = []
    for i, block in enumerate(blocks):
        elements = [*block.get("elements", []), block.get("accessory"), block.get("element")]
        ids = Counter(e["action_id"] for e in elements if e and "action_id" in e)
        twice += [(i, action_id) for action_id, n in ids.items() if n > 1]
    return twice


def _action_ids(blocks: Blocks) -> list[str]:
    return [e["action_id"] for b in blocks for e in b.get("elements", []) if "action_id" in e]


@pytest.mark.parametrize("build", MESSAGES.values(), ids=MESSAGES.keys())
def test_no_message_the_bot_builds_has_two_equal_action_ids_in_a_block(
    build: Callable[[], tuple[str, Blocks]],
) -> None:
    _, blocks = build()

    assert _action_ids(blocks), "the view at its largest shows buttons"
    assert _twice_in_a_block(blocks) == []
    check_message_blocks(blocks)


@pytest.mark.parametrize("build", FORMS.values(), ids=FORMS.keys())
def test_no_form_the_bot_builds_has_two_equal_action_ids_in_a_block(
    build: Callable[[], dict[str, Any]],
) -> None:
    view = build()

    assert _twice_in_a_block(view["blocks"]) == []
    check_view(view)


def test_every_suspect_button_of_an_alert_has_its_own_action_id_and_the_same_listener() -> None:
    _, blocks = _alert()

    suspects = [a for a in _action_ids(blocks) if SUSPECT_ROLLBACK_ACTIONS.match(a)]

    assert len(suspects) == MAX_SUSPECT_BUTTONS
    assert len(set(suspects)) == len(suspects)
