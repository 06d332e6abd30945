"""Block Kit rendering of the deploy card, its thread messages and `/deploy` replies.

Slack text is product copy: success and failure use the runbooks' wording (seeds 001 and 003).
Every card stays inside Slack's limits however many services it lists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
from bot.canary.views import figure_lines, is_canary, retired_line, stage_line, steering
from bot.endings import never_started
from bot.gates.views import (
    banners,
    digest_of,
    gate_lines,
    is_restore,
    restore_outcome,
    restore_text,
    untouched,
    wait_button,
    wait_line,
)
from bot.mrkdwn import clip, escape, hhmm, join_lines, kept, mention, mentions, when
from bot.rollback.views import (
    change_line,
    database_warning,
    reason_words,
    roll_back_button,
    rollback_outcome,
)
from commands.deploy.replies import History
from pipeline.kernel.config import Config
from pipeline.kernel.text import counted, duration_words
from pipeline.records import manual_command
from store.deploy.models import Deployment, DeploymentState, StageEvent, Target, TargetStatus

APPROVE_ACTION = "deploy_approve"
REJECT_ACTION = "deploy_reject"
WINDOW_ROLLBACK_ACTION = "deploy_rollback"

# A reason in `/deploy history` is cut to this, so one long reason cannot push the other
# entries out of the list.
HISTORY_REASON = 120
# Blocks a card needs besides its service lines: header, context, banners, reason, state, figures,
# outcome, window, watch, retired, approvers, buttons, with room to spare.
_CARD_FIXED_BLOCKS = 18

# How a target's status shows: its icon on the card, and with the words after it in the
# record (`/deploy status <deployment-id>`).
TARGET_LOOK = {
    TargetStatus.PENDING: ("⏳", "not started"),
    TargetStatus.SKIPPED: ("⏭️", "skipped: already on it"),
    TargetStatus.REGISTERED: ("📝", "revision registered"),
    TargetStatus.UPDATING: ("🔄", "updating"),
    TargetStatus.STABLE: ("🩺", "checking health"),
    TargetStatus.HEALTHY: ("✅", "healthy"),
    TargetStatus.FAILED: ("❌", "failed"),
    TargetStatus.ROLLING_BACK: ("↩️", "rolling back"),
    TargetStatus.ROLLED_BACK: ("↩️", "rolled back"),
    TargetStatus.ROLLBACK_FAILED: ("🚨", "rollback failed"),
}


def _title(run: Deployment) -> str:
    return run.environment.capitalize()


def target_line(t: Target, *, rollback: bool = False) -> str:
    if rollback and t.status in (TargetStatus.PENDING, TargetStatus.SKIPPED):
        return change_line(t)
    icon, _ = TARGET_LOOK[t.status]
    current = t.current_version or "unknown"
    if t.status is TargetStatus.SKIPPED:
        return f"{icon} `{t.service}` already on {t.target_version}: skipped"
    if t.reverted_by is not None:
        # A rollback took it back since: no tick beside a change no longer in effect.
        return f"↩️ `{t.service}` {current} → *{t.target_version}* · rolled back"
    return f"{icon} `{t.service}` {current} → *{t.target_version}*{digest_of(t)}"


def _state_words(run: Deployment) -> str:
    """The state in words; a request that needs no approval is starting, not awaiting one."""
    if run.state is DeploymentState.AWAITING_APPROVAL and not run.required_approvals:
        return "starting"
    return run.state.words


def summary_text(run: Deployment) -> str:
    """One line for notifications and history."""
    state = _state_words(run)
    if run.is_rollback:
        changes = ", ".join(
            f"`{t.service}` {t.current_version or '?'} → {t.target_version}"
            for t in run.active_targets
        )
        reverts = f" of `{run.reverts}`" if run.reverts else ""
        return f"↩️ rollback `{run.id}`{reverts} {run.environment}: {changes}, {state}"
    versions = sorted({t.target_version for t in run.active_targets})
    targets = run.active_targets
    what = f"`{targets[0].service}`" if len(targets) == 1 else counted(len(targets), "service")
    return f"`{run.id}` {run.environment}: {what} to {', '.join(versions)}, {state}"


def outcome_text(run: Deployment, reverters: Mapping[str, Deployment] | None = None) -> str | None:
    """The seeds' success/failure message for a finished run as it stands now, or None while
    it goes on. A deploy a rollback took back says so in its headline, naming who took back
    what (`reverters`: those rollbacks by id), never "successful"."""
    if run.is_rollback:
        return rollback_outcome(run)
    if is_restore(run):
        return restore_outcome(run)
    versions = ", ".join(sorted({t.target_version for t in run.active_targets}))
    head = f"Version: {versions}\nDeployment ID: {run.id}\nEnvironment: {run.environment}\n"
    if run.state is DeploymentState.SUCCEEDED:
        back = _taken_back(run, reverters or {})
        if not back:
            return (
                f"✅ {_title(run)} deployment successful\n{head}"
                "All services healthy and operational"
            )
        how = "rolled back" if run.reverted_by is not None else "partly rolled back"
        return f"↩️ {_title(run)} deployment {how}\n{head}" + "\n".join(back)
    if run.state is DeploymentState.ROLLED_BACK:
        after = (
            "It stopped before any service changed: nothing to roll back."
            if untouched(run)
            else "Automatic rollback completed: services restored to their previous versions"
        )
        return (
            f"🚨 {_title(run)} deployment FAILED\n{head}"
            f"Reason: {kept(run.error, run.error_line, default='unknown')}\n{after}"
        )
    if run.state is DeploymentState.ROLLBACK_FAILED:
        stuck = [t for t in run.active_targets if t.status is TargetStatus.ROLLBACK_FAILED]
        return (
            f"🚨 {_title(run)} deployment FAILED\n{head}"
            f"Reason: {kept(run.error, run.error_line, default='unknown')}\n"
            "⚠️ ACTION REQUIRED: Manual investigation needed\n"
            f"Automatic rollback failed for {', '.join(f'`{t.service}`' for t in stuck)}."
        )
    return never_started(run, nothing="Nothing was deployed.")


def manual_steps(run: Deployment, config: Config) -> str:
    """What is left to do by hand after a failed rollback."""
    env = config.environment(run.environment)
    lines = []
    for t in run.active_targets:
        # A deploy's rollback goes back to the previous revision; a rollback run to its target.
        goal = t.new_task_def if run.is_rollback else t.previous_task_def
        if t.status is TargetStatus.ROLLBACK_FAILED and goal:
            command = manual_command(run, t, env=env, svc=config.service(t.service))
            lines.append(f"`{t.service}`: {escape(t.detail or 'rollback failed')}\n```{command}```")
    return "\n".join(lines)


def _state_line(run: Deployment) -> str:
    if run.state is DeploymentState.AWAITING_APPROVAL and not run.required_approvals:
        return "*Starting:* no approval needed"
    if run.state is DeploymentState.AWAITING_APPROVAL:
        due = f", expires {when(run.approval_due_at)}" if run.approval_due_at else ""
        return f"*Awaiting approval:* {len(run.approved_by)}/{run.required_approvals}{due}"
    if run.state is DeploymentState.APPROVED:
        return "*Approved:* starting…"
    if run.state is DeploymentState.RUNNING and is_restore(run):
        return "*Restoring:* details in the thread"
    if run.state is DeploymentState.RUNNING:
        if run.is_rollback:
            return "*Rolling back:* details in the thread"
        return "*Deploying:* rolling out, details in the thread"
    if run.state is DeploymentState.ROLLING_BACK:
        return f"*Rolling back:* {kept(run.error, run.error_line, default='a service failed')}"
    return ""


def run_state(run: Deployment, *, canary_stages: int, now: datetime | None = None) -> str:
    """Where a run stands, in one line (empty once it has finished): a canary's stage, the wait
    after approval (the time left as of `now`, else when it starts), or its state."""
    state = stage_line(run, canary_stages) if is_canary(run) else None
    return state or wait_line(run, now) or _state_line(run)


def finished_text(run: Deployment) -> str:
    """The message that tells a run's end in its thread: its outcome, and for a successful
    deploy how long it can be rolled back without approvals."""
    text = outcome_text(run) or ""
    if (
        run.state is DeploymentState.SUCCEEDED
        and run.rollback_deadline is not None
        and run.finished_at is not None
    ):
        window = (run.rollback_deadline - run.finished_at).total_seconds()
        text += f"\nRollback available for {duration_words(window)}"
    return text


def _taken_back(run: Deployment, reverters: Mapping[str, Deployment]) -> list[str]:
    """One line per rollback that took services of deploy `run` back: what, who, when, why."""
    by_rollback: dict[str, list[str]] = {}
    for t in run.active_targets:
        if t.reverted_by is not None:
            by_rollback.setdefault(t.reverted_by, []).append(f"`{t.service}`")
    lines = []
    for rollback_id, names in by_rollback.items():
        whole = run.reverted_by is not None and len(by_rollback) == 1
        what = "Rolled back" if whole else ", ".join(names) + " rolled back"
        reverter = reverters.get(rollback_id)
        if reverter is None:
            lines.append(f"{what} by rollback `{rollback_id}`.")
            continue
        at = reverter.finished_at or reverter.updated_at
        lines.append(
            f"{what} by {mention(reverter.requested_by)} {when(at)} "
            f"(rollback `{reverter.id}`): {reason_words(reverter)}"
        )
    return lines


def window_open(run: Deployment) -> bool:
    """The rollback window of a successful deploy is open for the services not taken back yet
    (the card is redrawn when it closes)."""
    return (
        run.state is DeploymentState.SUCCEEDED
        and run.rollback_deadline is not None
        and run.window_closed_at is None
        and run.reverted_by is None
    )


def window_line(run: Deployment) -> str | None:
    """Where a successful deploy's rollback window stands; None when it has none or every
    service was taken back."""
    if (
        run.state is not DeploymentState.SUCCEEDED
        or run.rollback_deadline is None
        or run.reverted_by is not None
    ):
        return None
    if window_open(run):
        line = f"↩️ *Rollback available until {hhmm(run.rollback_deadline)}*"
        if any(t.reverted_by is not None for t in run.active_targets):
            line += " for " + ", ".join(f"`{t.service}`" for t in run.not_taken_back)
        return line
    closed = min(run.window_closed_at or run.rollback_deadline, run.rollback_deadline)
    return (
        f"⌛ The rollback window closed at {hhmm(closed)}: `/rollback` now posts a plan card "
        "that needs approvals."
    )


def deploy_card(
    run: Deployment,
    *,
    confirm_buttons: bool,
    reverters: Mapping[str, Deployment] | None = None,
    canary_stages: int = 0,
    now: datetime | None = None,
    approvers: Sequence[str] = (),
    watch: Sequence[str] = (),
) -> tuple[str, Blocks]:
    """The card of a deploy or a rollback: fallback text and blocks. Approve/Reject while
    approval is pending; Roll back while a successful deploy's window is open; during the wait
    after approval, the time left as of `now`; the post-deploy watch's `watch` lines."""
    if run.is_rollback:
        title = f"↩️ Rollback in {run.environment}"
        about = f"Rollback `{run.id}`" + (f" of deployment `{run.reverts}`" if run.reverts else "")
    elif is_restore(run):
        title = f"💾 Restore the database of {run.environment}"
        about = f"Restore `{run.id}`"
    else:
        title = f"🚀 Deploy to {run.environment}"
        about = f"Deployment `{run.id}`"
    if run.required_approvals:
        approvals = f" · approvals {len(run.approved_by)}/{run.required_approvals}"
    else:
        approvals = "" if run.is_rollback else " · no approval needed"
    blocks: Blocks = [
        header(title),
        context(f"Requested by {mention(run.requested_by)} · {about}{approvals}"),
        *(context(b) for b in banners(run)),
        *([section(restore_text(run))] if is_restore(run) else []),
        *([section(warning)] if (warning := database_warning(run)) else []),
        *sections(
            [target_line(t, rollback=run.is_rollback) for t in run.targets],
            max_blocks=MAX_MESSAGE_BLOCKS - _CARD_FIXED_BLOCKS,
            noun="more services",
        ),
    ]
    if run.is_rollback:
        blocks.append(section(f"*Reason:* {reason_words(run)}"))
    outcome = outcome_text(run, reverters)
    state = run_state(run, canary_stages=canary_stages, now=now)
    if state:
        blocks.append(section(state))
    gates = gate_lines(run)
    if gates:
        blocks.append(section("\n".join(gates)))
    figures = figure_lines(run) if run.state is DeploymentState.RUNNING else []
    if figures:
        blocks.append(section("\n".join(figures)))
    if outcome:
        blocks.append(section(outcome))
    window = window_line(run)
    if window:
        blocks.append(section(window))
    if watch:
        blocks.append(section("\n".join(watch)))
    retired = retired_line(run)
    if retired:
        blocks.append(context(retired))
    if run.approved_by:
        blocks.append(context("Approved by " + mentions(run.approved_by)))
    asking = _asking(run, approvers)
    if asking:
        blocks.append(context(asking))
    if run.state is DeploymentState.AWAITING_APPROVAL and run.required_approvals > 0:
        blocks.append(approval_buttons(run, confirm_buttons=confirm_buttons))
    elif window_open(run):
        blocks.append(_window_button(run))
    elif (buttons := steering(run) or wait_button(run)) is not None:
        blocks.append(buttons)
    fallback = outcome.splitlines()[0] if outcome else f"{title}: {summary_text(run)}"
    if asking:
        fallback += f" · {asking}"
    return fallback, blocks


def _asking(run: Deployment, approvers: Sequence[str]) -> str | None:
    """Who is asked to decide, as mentions (users and user groups), while a request waits."""
    if run.state is not DeploymentState.AWAITING_APPROVAL or not approvers:
        return None
    left = run.required_approvals - len(run.approved_by)
    if left <= 0:
        return None
    return f"👀 Approvers: {mentions(approvers)} · {left} approval{'s' if left > 1 else ''} needed"


def _window_button(run: Deployment) -> dict[str, Any]:
    return actions(
        f"window:{run.id}",
        [roll_back_button(run, action_id=WINDOW_ROLLBACK_ACTION, text="Roll back", value=run.id)],
    )


def approval_buttons(run: Deployment, *, confirm_buttons: bool) -> dict[str, Any]:
    """Approve and Reject, as the card and the App Home show them (one handler for both)."""
    approve_confirm = reject_confirm = None
    if confirm_buttons:
        names = [t.service for t in run.active_targets]
        listed = join_lines(names, 200, noun="more").replace("\n", ", ")
        approve_confirm = confirm(
            title=f"Deploy to {run.environment}?",
            text=f"This deploys {counted(len(names), 'service')} to {run.environment}: {listed}.",
            ok="Approve",
        )
        reject_confirm = confirm(
            title="Reject this deploy?", text="Nothing will be deployed.", ok="Reject"
        )
    choices = [
        (APPROVE_ACTION, "Approve", "primary", approve_confirm),
        (REJECT_ACTION, "Reject", "danger", reject_confirm),
    ]
    return actions(
        f"deploy:{run.id}",
        [
            button(action_id=action_id, text=verb, value=run.id, style=style, confirm_with=asked)
            for action_id, verb, style, asked in choices
        ],
    )


def event_text(event: StageEvent) -> str:
    """One thread message for one stage event, in words: a failure whose reason already names
    its service is said by the reason alone ("`auth-svc` failed its health check ...")."""
    who = f"`{event.service}` " if event.service else ""
    said = kept(event.detail, event.detail_line, default="") if event.detail else ""
    icon = {"failed": "❌", "passed": "✅", "done": "✅", "interrupted": "⏸️"}.get(event.status, "•")
    if event.status == "failed" and who and said.startswith(who + "failed "):
        return f"{icon} {said}"
    stage = event.stage.replace("_", " ")
    return f"{icon} {who}{stage} {event.status}" + (f": {said}" if said else "")


def history_text(history: History) -> str:
    where = f" in `{history.environment}`" if history.environment else ""
    if not history.runs:
        return f"No deployments{where} yet."
    lines = [
        f"• {when(run.created_at)} by {mention(run.requested_by)}: {summary_text(run)}"
        + _reverted_words(run, history.reverters)
        for run in history.runs
    ]
    return f"*Recent deployments{where}*\n" + join_lines(lines, MAX_SECTION_TEXT)


def _reverted_words(run: Deployment, reverters: Mapping[str, Deployment]) -> str:
    if run.is_rollback:
        return f" (reason: {clip(reason_words(run), HISTORY_REASON)})"
    if run.reverted_by is None:
        return ""
    by = reverters.get(run.reverted_by)
    if by is None:
        return f" · rolled back by `{run.reverted_by}`"
    return (
        f" · rolled back by {mention(by.requested_by)} {when(by.finished_at or by.updated_at)} "
        f"(`{by.id}`): {clip(reason_words(by), HISTORY_REASON)}"
    )


def break_glass_text(run: Deployment) -> str:
    """The loud announcement of a break-glass deploy, for the whole channel."""
    services = ", ".join(f"`{t.service}`" for t in run.active_targets)
    return (
        f"🔥 <!here> *Break-glass deploy* to {run.environment} requested by "
        f"{mention(run.requested_by)}: {escape(run.break_glass or '')}\n"
        f"{services} outside the deploy windows or during a freeze. It needs "
        f"{run.required_approvals} approvals, one more than usual (deployment `{run.id}`)."
    )
