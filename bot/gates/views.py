"""What the gates look like: the card's banners (break-glass, hotfix), the wait's countdown and
Cancel button, the backup and the migrations, a database restore, a dry run's report, and an
environment's status (`/deploy status <environment>`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.blocks import MAX_MESSAGE_TEXT, MAX_SECTION_TEXT, actions, button, confirm
from bot.endings import never_started
from bot.mrkdwn import escape, hhmm, join_lines, kept, mention, render, when
from commands.deploy.replies import DryRun
from commands.gates.replies import EnvironmentView
from commands.health.replies import HealthReport
from pipeline.kernel.config import format_duration
from pipeline.kernel.text import counted
from pipeline.setbacks import setback_line
from store.deploy.models import Deployment, DeploymentState, RunKind, Target, TargetStatus

CANCEL_WAIT_ACTION = "deploy_cancel_wait"


def banners(run: Deployment) -> list[str]:
    """Context lines a card must shout: break-glass, a hotfix that skipped staging, what of a
    promotion failed or was rolled back lately where it is promoted from."""
    out = []
    if run.break_glass:
        out.append(
            f"🔥 *BREAK-GLASS*: {escape(run.break_glass)} · needs {run.required_approvals} "
            "approvals, one more than usual"
        )
    if run.skip_staging:
        out.append(f"⏩ *Hotfix*: staging skipped · {escape(run.skip_staging)}")
    if run.source_setbacks:
        warnings = [f"⚠️ {render(setback_line(s))}" for s in run.source_setbacks]
        out.append(join_lines(warnings, MAX_SECTION_TEXT, noun="more failures or rollbacks"))
    return out


def digest_of(t: Target) -> str:
    return f" · `{t.image_digest[:19]}…`" if t.image_digest else ""


def wait_line(run: Deployment, now: datetime | None = None) -> str | None:
    """The wait after approval: how long is left as of `now` (the card is redrawn as it runs
    down), and when the run starts."""
    if run.state is not DeploymentState.WAITING or run.wait_until is None:
        return None
    at = f"starts at {hhmm(run.wait_until)}"
    if now is not None:
        left = max(round((run.wait_until - now).total_seconds()), 0)
        at = f"starts in {format_duration(left) if left else 'a moment'}, at {hhmm(run.wait_until)}"
    return f"⏳ *Approved:* {at} (the wait after approval)"


def wait_button(run: Deployment) -> dict[str, Any] | None:
    if run.state is not DeploymentState.WAITING:
        return None
    return actions(
        f"wait:{run.id}",
        [
            button(
                action_id=CANCEL_WAIT_ACTION,
                text="Cancel",
                value=run.id,
                style="danger",
                confirm_with=confirm(
                    title="Cancel this deploy?",
                    text="Nothing has changed yet; the approved deploy will not start.",
                    ok="Cancel deploy",
                    deny="Keep it",
                ),
            )
        ],
    )


def gate_lines(run: Deployment) -> list[str]:
    """The backup and the migrations, as far as they went."""
    lines = []
    if run.backup_id:
        lines.append(f"💾 Backup: snapshot `{run.backup_id}` (kept)")
    for m in run.migrations:
        if m.exit_code == 0:
            how = "done (exit code 0)"
        elif m.exit_code is not None:
            how = f"*failed*: exit code {m.exit_code}"
        else:
            how = f"*stopped*: {escape(m.stopped_reason or 'no exit code')}"
        logs = f" · <{m.log_url}|logs>" if m.log_url else ""
        lines.append(f"🗄️ Migration `{m.service}`: {how}{logs}")
    return lines


def untouched(run: Deployment) -> bool:
    """A failed run that stopped before any service changed."""
    return not any(
        t.status in (TargetStatus.ROLLED_BACK, TargetStatus.ROLLBACK_FAILED)
        for t in run.active_targets
    )


def restore_text(run: Deployment) -> str:
    plan = run.restore
    assert plan is not None
    return (
        f"Snapshot `{plan.snapshot}` of deployment `{plan.deployment}` → a NEW instance "
        f"`{plan.instance}`. The live instance `{plan.source}` is not touched."
    )


def restore_outcome(run: Deployment) -> str | None:
    plan = run.restore
    assert plan is not None
    if run.state is DeploymentState.SUCCEEDED:
        return (
            f"✅ Database restored to the new instance `{plan.instance}`: endpoint "
            f"`{plan.endpoint or 'unknown'}`. Point a service at it to use it."
        )
    if run.state is DeploymentState.ROLLBACK_FAILED:
        return (
            f"🚨 Restore FAILED: {kept(run.error, run.error_line, default='unknown')}. The live "
            "database is untouched."
        )
    return never_started(run, nothing="Nothing was restored.")


def dry_run_text(dry: DryRun) -> str:
    request = dry.request
    head = f"🧪 *Dry run* of `/deploy {dry.environment} {','.join(request.services)}"
    head += f" {request.version}`" if request.version else "`"
    lines = [head, "*Plan*"]
    for t in dry.targets:
        if t.status is TargetStatus.SKIPPED:
            lines.append(f"• `{t.service}` already on {t.target_version}: skipped")
        else:
            lines.append(f"• `{t.service}` {t.current_version or 'unknown'} → *{t.target_version}*")
    lines.append("*Checks*")
    for c in dry.checks:
        # A check that only informs (staging skipped by a hotfix) is a warning, never a tick.
        icon = "⚠️" if not c.blocking else ("✅" if c.ok else "❌")
        where = f"`{c.service}` " if c.service else ""
        lines.append(f"{icon} {c.name}: {where}{render(c.detail)}")
    blocked = [c for c in dry.checks if c.blocking and not c.ok]
    verdict = (
        f"❌ It would be refused: {counted(len(blocked), 'check')} failed."
        if blocked
        else f"✅ It would post a plan card needing {counted(dry.approvals, 'approval')}."
    )
    lines.append(verdict)
    lines.append("Nothing was changed: no ECS, RDS or S3 write and no approval request.")
    return join_lines(lines, MAX_MESSAGE_TEXT)


def environment_text(view: EnvironmentView) -> str:
    lines = [f"*`{view.environment}`*"]
    if view.lock is not None:
        # Dates too: a lock may last days (`for 3d`).
        until = f" until {when(view.lock.until)}" if view.lock.until else ""
        lines.append(
            f"🔒 Locked by {mention(view.lock.holder)} since {when(view.lock.since)}{until}: "
            f"{escape(view.lock.reason or 'no reason given')}"
        )
    else:
        lines.append("🔓 Not locked")
    if view.freeze:
        lines.append(f"🧊 Frozen {escape(view.freeze)}")
    if not view.windows:
        lines.append("🕒 No deploy windows: any time")
    elif view.open_now:
        lines.append(f"🕒 Inside a deploy window ({', '.join(view.windows)}, {view.timezone})")
    else:
        nxt = (
            f"; the next opens {view.next_open:%a %Y-%m-%d %H:%M} {view.timezone}"
            if view.next_open
            else ""
        )
        lines.append(
            f"🕒 Outside the deploy windows ({', '.join(view.windows)}, {view.timezone}){nxt}"
        )
    if view.in_flight:
        lines.append("*In progress*")
        lines += [
            f"• `{r.id}` {r.state.words} by {mention(r.requested_by)}" for r in view.in_flight
        ]
    else:
        lines.append("Nothing in progress.")
    return join_lines(lines, MAX_MESSAGE_TEXT)


def is_restore(run: Deployment) -> bool:
    return run.kind is RunKind.RESTORE


def health_text(report: HealthReport) -> str:
    """One table: service, status, latency, version seen (and, with --full, ECS)."""
    healthy = sum(1 for r in report.rows if r.healthy)
    checked = sum(1 for r in report.rows if r.healthy is not None)
    lines = [f"🩺 *Health of `{report.environment}`*: {healthy}/{checked} healthy"]
    for r in report.rows:
        icon = "✅" if r.healthy else ("➖" if r.healthy is None else "❌")
        latency = f" · {r.latency_s * 1000:.0f} ms" if r.latency_s is not None else ""
        version = f" · {escape(r.version)}" if r.version else ""
        ecs = ""
        if report.full and r.running is not None:
            td = (r.task_definition or "?").rsplit("/", 1)[-1]
            ecs = f" · ECS {r.running}/{r.desired} on `{td}`"
        lines.append(f"{icon} `{r.service}`: {escape(r.detail)}{latency}{version}{ecs}")
    return join_lines(lines, MAX_MESSAGE_TEXT)
