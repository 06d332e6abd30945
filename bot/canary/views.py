"""A canary on its card: the stage and its weight, the bake time left, each service's health
and 5xx figures, and the Promote / Hold or Resume / Abort buttons (each with a confirm dialog).
"""

from __future__ import annotations

from typing import Any

from bot.blocks import actions, button, confirm
from bot.mrkdwn import hhmm, mention
from pipeline.kernel.config import format_duration
from store.deploy.models import Deployment, DeploymentState, RolloutStage, StageStatus

CANARY_PROMOTE_ACTION = "canary_promote"
CANARY_HOLD_ACTION = "canary_hold"
CANARY_RESUME_ACTION = "canary_resume"
CANARY_ABORT_ACTION = "canary_abort"


def is_canary(run: Deployment) -> bool:
    return bool(run.stages) or any(t.canary_colour for t in run.active_targets)


def baking(run: Deployment) -> RolloutStage | None:
    stage = run.current_stage
    if run.state is DeploymentState.RUNNING and stage is not None and stage.ended_at is None:
        return stage
    return None


def stage_line(run: Deployment, total: int) -> str | None:
    """Where the canary stands: its stage, weight and the bake time left (or who held it)."""
    stage = baking(run)
    if stage is None:
        return None
    left = format_duration(stage.left_s)
    where = f"stage {stage.position + 1}/{total}: {stage.weight}% of the traffic"
    if stage.status is StageStatus.HELD:
        who = mention(stage.held_by) if stage.held_by else "someone"
        at = f" at {hhmm(stage.held_at)}" if stage.held_at else ""
        return f"⏸️ *Held* by {who}{at} · {where} · {left} of bake left"
    return f"🐤 *Canary* {where} · {left} of bake left"


def figure_lines(run: Deployment) -> list[str]:
    """Each canary service's new colour: its health and 5xx figures at the last check."""
    stage = run.current_stage
    if stage is None:
        return []
    lines = []
    for t in run.active_targets:
        if t.canary_colour is None:
            continue
        f = stage.figures.get(t.service)
        if f is None:
            lines.append(f"• `{t.service}` → {t.canary_colour}: no check yet")
            continue
        health = "✅" if f.healthy else f"❌ {f.health_detail or ''}".rstrip()
        if not f.data:
            traffic = "5xx: no data yet"
        elif f.requests:
            traffic = f"5xx {f.errors_5xx / f.requests:.1%} ({f.errors_5xx:.0f}/{f.requests:.0f})"
        else:
            traffic = "5xx: no requests yet"
        slow = f" · ⚠️ slow {f.slowest_s:.1f}s" if f.slow and f.slowest_s is not None else ""
        lines.append(f"• `{t.service}` → {t.canary_colour}: health {health} · {traffic}{slow}")
    return lines


def steering(run: Deployment) -> dict[str, Any] | None:
    """The buttons, while a stage bakes (approvers and rollbackers only; others are refused)."""
    stage = baking(run)
    if stage is None:
        return None
    if stage.status is StageStatus.HELD:
        pause = (
            CANARY_RESUME_ACTION,
            "Resume",
            None,
            f"The {stage.weight}% stage goes on with {format_duration(stage.left_s)} of bake left.",
        )
    else:
        pause = (
            CANARY_HOLD_ACTION,
            "Hold",
            None,
            f"The bake clock of the {stage.weight}% stage stops; traffic stays as it is until "
            "someone resumes, promotes or aborts.",
        )
    choices = [
        (
            CANARY_PROMOTE_ACTION,
            "Promote",
            "primary",
            f"The {stage.weight}% stage ends now and the next one begins.",
        ),
        pause,
        (
            CANARY_ABORT_ACTION,
            "Abort",
            "danger",
            "Every service flips back to 100% on its old colour now.",
        ),
    ]
    return actions(
        f"canary:{run.id}",
        [
            button(
                action_id=action_id,
                text=verb,
                value=run.id,
                style=style,
                confirm_with=confirm(title=f"{verb} the canary?", text=body, ok=verb),
            )
            for action_id, verb, style, body in choices
        ],
    )


def retired_line(run: Deployment) -> str | None:
    if run.old_colours_retired_at is None:
        return None
    return f"🌙 Old colours scaled to 0 at {hhmm(run.old_colours_retired_at)}."
