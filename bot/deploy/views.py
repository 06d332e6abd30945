"""Block Kit rendering of the deploy card, its thread messages and `/deploy` replies.

Slack text is product copy: success and failure use the runbooks' wording (seeds 001 and 003).
Every card stays inside Slack's limits however many services it lists.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.blocks import (
    MAX_MESSAGE_BLOCKS,
    MAX_SECTION_TEXT,
    Blocks,
    actions,
    button,
    confirm,
    context,
    header,
    section,
    sections,
)
from bot.mrkdwn import clip, escape, join_lines, mention, mentions
from commands.deploy.record import deployment_record
from commands.deploy.usecases import History, Record
from pipeline.kernel.config import Config
from store.deploy.models import Deployment, DeploymentState, StageEvent, Target, TargetStatus

APPROVE_ACTION = "deploy_approve"
REJECT_ACTION = "deploy_reject"

# Blocks a card needs besides its service lines: header, context, state, outcome, approvers,
# buttons, with room to spare.
_CARD_FIXED_BLOCKS = 8

_TARGET_ICON = {
    TargetStatus.PENDING: "⏳",
    TargetStatus.SKIPPED: "⏭️",
    TargetStatus.REGISTERED: "📝",
    TargetStatus.UPDATING: "🔄",
    TargetStatus.STABLE: "🩺",
    TargetStatus.HEALTHY: "✅",
    TargetStatus.FAILED: "❌",
    TargetStatus.ROLLING_BACK: "↩️",
    TargetStatus.ROLLED_BACK: "↩️",
    TargetStatus.ROLLBACK_FAILED: "🚨",
}


def _when(at: datetime) -> str:
    fallback = at.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def _title(run: Deployment) -> str:
    return run.environment.capitalize()


def target_line(t: Target) -> str:
    icon = _TARGET_ICON[t.status]
    current = t.current_version or "unknown"
    if t.status is TargetStatus.SKIPPED:
        return f"{icon} `{t.service}` already on {t.target_version}: skipped"
    return f"{icon} `{t.service}` {current} → *{t.target_version}*"


def summary_text(run: Deployment) -> str:
    """One line for notifications and history."""
    versions = sorted({t.target_version for t in run.active_targets})
    return (
        f"`{run.id}` {run.environment}: {len(run.active_targets)} service(s) to "
        f"{', '.join(versions)}, {run.state.value.replace('_', ' ')}"
    )


def outcome_text(run: Deployment) -> str | None:
    """The seeds' success/failure message for a finished run, or None while it goes on."""
    versions = ", ".join(sorted({t.target_version for t in run.active_targets}))
    head = f"Version: {versions}\nDeployment ID: {run.id}\nEnvironment: {run.environment}\n"
    if run.state is DeploymentState.SUCCEEDED:
        return f"✅ {_title(run)} deployment successful\n{head}All services healthy and operational"
    if run.state is DeploymentState.ROLLED_BACK:
        return (
            f"🚨 {_title(run)} deployment FAILED\n{head}"
            f"Reason: {escape(run.error or 'unknown')}\n"
            "Automatic rollback completed: services restored to their previous versions"
        )
    if run.state is DeploymentState.ROLLBACK_FAILED:
        stuck = [t for t in run.active_targets if t.status is TargetStatus.ROLLBACK_FAILED]
        return (
            f"🚨 {_title(run)} deployment FAILED\n{head}"
            f"Reason: {escape(run.error or 'unknown')}\n"
            "⚠️ ACTION REQUIRED: Manual investigation needed\n"
            f"Automatic rollback failed for {', '.join(f'`{t.service}`' for t in stuck)}."
        )
    if run.state is DeploymentState.REJECTED:
        who = mention(run.rejected_by) if run.rejected_by else "an approver"
        return f"🛑 Rejected by {who}. Nothing was deployed."
    if run.state is DeploymentState.EXPIRED:
        return "⌛ Expired: no decision within the approval window. Nothing was deployed."
    if run.state is DeploymentState.CANCELLED:
        return f"🚫 Cancelled: {escape(run.error or 'no reason given')}. Nothing was deployed."
    return None


def manual_steps(run: Deployment, config: Config) -> str:
    """What is left to do by hand after a failed rollback."""
    env = config.environment(run.environment)
    lines = []
    for t in run.active_targets:
        if t.status is TargetStatus.ROLLBACK_FAILED and t.previous_task_def:
            svc = config.service(t.service)
            lines.append(
                f"`{t.service}`: {escape(t.detail or 'rollback failed')}\n"
                f"```aws ecs update-service --region {env.region} --cluster {env.cluster} "
                f"--service {svc.ecs_service} --task-definition {t.previous_task_def}```"
            )
    return "\n".join(lines)


def _state_line(run: Deployment) -> str:
    if run.state is DeploymentState.AWAITING_APPROVAL:
        due = f", expires {_when(run.approval_due_at)}" if run.approval_due_at else ""
        return f"*Awaiting approval:* {len(run.approved_by)}/{run.required_approvals}{due}"
    if run.state is DeploymentState.APPROVED:
        return "*Approved:* starting…"
    if run.state is DeploymentState.RUNNING:
        return "*Deploying:* rolling out, details in the thread"
    if run.state is DeploymentState.ROLLING_BACK:
        return f"*Rolling back:* {escape(run.error or 'a service failed')}"
    return ""


def deploy_card(run: Deployment, *, confirm_buttons: bool) -> tuple[str, Blocks]:
    """The plan card: fallback text and blocks. Buttons only while approval is pending."""
    title = f"🚀 Deploy to {run.environment}"
    blocks: Blocks = [
        header(title),
        context(
            f"Requested by {mention(run.requested_by)} · Deployment `{run.id}` · "
            f"approvals {len(run.approved_by)}/{run.required_approvals}"
        ),
        *sections(
            [target_line(t) for t in run.targets],
            max_blocks=MAX_MESSAGE_BLOCKS - _CARD_FIXED_BLOCKS,
            noun="more services",
        ),
    ]
    outcome = outcome_text(run)
    state = _state_line(run)
    if state:
        blocks.append(section(state))
    if outcome:
        blocks.append(section(outcome))
    if run.approved_by:
        blocks.append(context("Approved by " + mentions(run.approved_by)))
    if run.state is DeploymentState.AWAITING_APPROVAL and run.required_approvals > 0:
        blocks.append(_buttons(run, confirm_buttons=confirm_buttons))
    fallback = outcome.splitlines()[0] if outcome else f"{title}: {summary_text(run)}"
    return fallback, blocks


def _buttons(run: Deployment, *, confirm_buttons: bool) -> dict[str, Any]:
    approve_confirm = reject_confirm = None
    if confirm_buttons:
        names = [t.service for t in run.active_targets]
        listed = join_lines(names, 200, noun="more").replace("\n", ", ")
        approve_confirm = confirm(
            title=f"Deploy to {run.environment}?",
            text=f"This deploys {len(names)} service(s) to {run.environment}: {listed}.",
            ok="Approve",
        )
        reject_confirm = confirm(
            title="Reject this deploy?", text="Nothing will be deployed.", ok="Reject"
        )
    return actions(
        f"deploy:{run.id}",
        [
            button(
                action_id=APPROVE_ACTION,
                text="Approve",
                value=run.id,
                style="primary",
                confirm_with=approve_confirm,
            ),
            button(
                action_id=REJECT_ACTION,
                text="Reject",
                value=run.id,
                style="danger",
                confirm_with=reject_confirm,
            ),
        ],
    )


def event_text(event: StageEvent) -> str:
    """One thread message for one stage event."""
    who = f"`{event.service}` " if event.service else ""
    detail = f": {escape(event.detail)}" if event.detail else ""
    icon = {"failed": "❌", "passed": "✅", "done": "✅", "interrupted": "⏸️"}.get(event.status, "•")
    return f"{icon} {who}{event.stage} {event.status}{detail}"


def rollback_notice(run: Deployment, t: Target) -> str:
    """The runbook's rollback communication (seed 001), one per service rolled back."""
    return (
        "🔄 *Deployment Rollback*\n\n"
        f"*Service*: {t.service}\n"
        f"*From Version*: {t.target_version}\n"
        f"*To Version*: {t.current_version or 'previous task definition'}\n"
        f"*Reason*: {escape(run.error or 'deployment failed')}\n"
        f"*Time*: {_when(run.finished_at or run.updated_at)}\n\n"
        "Investigating root cause. Updates to follow."
    )


def record_text(record: Record) -> str:
    run = record.run
    body = json.dumps(deployment_record(run), indent=2)
    head = f"Deployment `{run.id}`: {run.state.value.replace('_', ' ')}\n"
    return head + clip(f"```{escape(body)}```", MAX_SECTION_TEXT - len(head))


def history_text(history: History) -> str:
    where = f" in `{history.environment}`" if history.environment else ""
    if not history.runs:
        return f"No deployments{where} yet."
    lines = [
        f"• {_when(run.created_at)} by {mention(run.requested_by)}: {summary_text(run)}"
        for run in history.runs
    ]
    return f"*Recent deployments{where}*\n" + join_lines(lines, MAX_SECTION_TEXT)
