"""The watch's copy: its alert (thread and channel) and the lines it adds to a run's card."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence

from bot.blocks import Blocks, actions, button, context, section
from bot.mrkdwn import clip, hhmm, mentions
from bot.rollback.views import roll_back_button
from store.deploy.models import Deployment, RunKind
from store.watch import AlertKind, Watch, WatchAlert, WatchState

WATCH_INCIDENT_ACTION = "watch_open_incident"
# The alert's own Roll back: at once inside the window, a plan card needing approvals after it.
WATCH_ROLLBACK_ACTION = "watch_rollback"
# The summary prefilled in the declare form: what breached, where, with its figures. It
# becomes a war room's name and topic, so it stays a line (and the button's value small).
_SUMMARY_CHARS = 300
_AFTER_WINDOW = "After its rollback window, this posts a plan card that needs approvals. "


def incident_value(watch: Watch, alert: WatchAlert) -> str:
    """The Open incident button's value: what the declare form is prefilled with (the
    service, and a summary naming the environment and the figures)."""
    summary = (
        f"{watch.service} in {watch.environment} after deployment {watch.deployment_id}: "
        f"{alert.figures}"
    )
    return json.dumps(
        {
            "service": watch.service,
            "environment": watch.environment,
            "deployment": watch.deployment_id,
            "summary": summary[:_SUMMARY_CHARS],
        }
    )


def alert_message(
    run: Deployment,
    watch: Watch,
    alert: WatchAlert,
    *,
    approvers: Sequence[str],
    rollback_id: str | None = None,
) -> tuple[str, Blocks]:
    """An alert of the watch: who must look, what breached with its figures, and what to do."""
    people = mentions([run.requested_by, *(a for a in run.approved_by if a != run.requested_by)])
    where = f"`{watch.service}` in {watch.environment}"
    if alert.kind is AlertKind.NO_DATA:
        text = (
            f"❔ {people}: no data from CloudWatch for {where} since deployment "
            f"`{run.id}` ({alert.figures}). The watch cannot judge it; check its metrics."
        )
        return text, [section(text)]
    if alert.kind is AlertKind.ROLLED_BACK and rollback_id is not None:
        text = (
            f"🚨 {people}: {where} breached after deployment `{run.id}`: {alert.figures}. "
            f"Inside the rollback window, the watch rolls it back at once (rollback "
            f"`{rollback_id}`)."
        )
        return text, [section(text)]
    if alert.kind is AlertKind.REGRESSION:
        text = (
            f"⚠️ {people}: {where} is worse than before deployment `{run.id}`, under its "
            f"thresholds: {alert.figures}. A warning: nothing is rolled back on its account."
        )
    else:
        text = f"🚨 {people}: {where} breached after deployment `{run.id}`: {alert.figures}."
    elements = [
        button(
            action_id=WATCH_INCIDENT_ACTION,
            text="Open incident",
            value=incident_value(watch, alert),
        )
    ]
    if run.kind is RunKind.DEPLOY and run.reverted_by is None:
        elements.insert(
            0,
            roll_back_button(
                # Rollbackers only; inside the window as the card's button, after it as
                # `/rollback` (commands/rollback/buttons.py, `on_alert_button`).
                run,
                action_id=WATCH_ROLLBACK_ACTION,
                text="Roll back",
                value=run.id,
                note=_AFTER_WINDOW,
            ),
        )
    blocks: Blocks = [
        section(text),
        actions(f"watch:{watch.id}:{alert.seq}", elements),
    ]
    if approvers:
        blocks.append(context(f"Approvers here: {mentions(approvers)}"))
    return text, blocks


def watch_lines(watches: Sequence[Watch], *, ecs_only: Collection[str] = ()) -> list[str]:
    """What the card says of its run's watches: one line per service (`ecs_only`: services
    with no target group, watched on CPU and memory alone)."""
    lines = []
    for w in watches:
        if w.state is WatchState.WATCHING:
            line = f"👀 `{w.service}` watching until {hhmm(w.ends_at)}"
            if w.service in ecs_only:
                line += " (no target group: CPU and memory only)"
            if w.figures:
                line += f": {w.figures}"
            if w.failure:
                line += f"\n⚠️ {w.failure} The watch goes on and reads again."
        else:
            line = f"👀 `{w.service}` watch ended: {w.outcome or 'no breach'}"
        lines.append(clip(line, 600))
    return lines


__all__ = [
    "WATCH_INCIDENT_ACTION",
    "WATCH_ROLLBACK_ACTION",
    "alert_message",
    "incident_value",
    "watch_lines",
]
