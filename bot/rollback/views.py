"""What a rollback looks like in Slack: the confirmation question, the card's words for a
rollback run, and seed 001's "🔄 Deployment Rollback" announcement.

Slack text is product copy: the announcement uses the runbook's template word for word.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.blocks import (
    MAX_MESSAGE_BLOCKS,
    MAX_SECTION_TEXT,
    Block,
    Blocks,
    actions,
    button,
    confirm,
    context,
    header,
    section,
    sections,
)
from bot.endings import never_started
from bot.mrkdwn import clip, escape, hhmm, join_lines, kept, when
from commands.rollback.replies import RollbackPrompt
from pipeline.kernel.text import counted
from store.deploy.models import Deployment, DeploymentState, Target, TargetStatus

ROLLBACK_CONFIRM_ACTION = "rollback_confirm"
ROLLBACK_CANCEL_ACTION = "rollback_cancel"
# A rollback notice keeps its reason to this much, so its list and its runbook line fit too.
_NOTICE_REASON = 1000


def change_line(t: Target) -> str:
    """One service of a rollback: from what runs now to the version it goes back to."""
    if t.status is TargetStatus.SKIPPED:
        return f"⏭️ `{t.service}` already runs {t.target_version}: skipped"
    return f"↩️ `{t.service}` {t.current_version or 'unknown'} → *{t.target_version}*"


def reason_words(run: Deployment) -> str:
    return escape(run.reason) if run.reason else "no reason given"


def database_warning(run: Deployment) -> str | None:
    """Seed 002's "Database errors: DO NOT rollback": the deploys a rollback takes back that
    migrated the database, which stays as they left it."""
    if not run.undoes_migrations:
        return None
    first = run.undoes_migrations[0].deployment_id
    head = (
        "⚠️ *The database will not go back with the code.* This rollback only moves the "
        "services, and the old code will run against the migrated schema. The runbook says: "
        "database errors, DO NOT roll back, investigate first. If the old data is what you "
        f"need, `/deploy restore-db {first}` restores its backup to a NEW instance.\n"
        "What stays migrated: "
    )
    deploys = "; ".join(
        f"deployment `{m.deployment_id}` ran migrations of "
        + ", ".join(f"`{s}`" for s in m.services)
        for m in run.undoes_migrations
    )
    # However many deploys it lists, the advice above stays whole within a section's text.
    return head + clip(deploys, MAX_SECTION_TEXT - len(head))


def rollback_prompt(prompt: RollbackPrompt) -> tuple[str, Blocks]:
    """The private question: what will change, Roll back or Cancel (the requester only)."""
    run = prompt.run
    title = f"↩️ Roll back in {run.environment}?"
    expires = f" It expires at {hhmm(run.approval_due_at)}." if run.approval_due_at else ""
    warning = database_warning(run)
    if run.required_approvals:
        how = (
            "After you confirm, a plan card asks for "
            f"{counted(run.required_approvals, 'approval')} "
            f"in {run.environment}: the rollback window is closed."
        )
    else:
        how = (
            "No approval is needed: every service goes back from a deploy whose rollback "
            "window is open."
        )
    if prompt.asked_despite_yes:
        how += " `-y` and the card's button skip this question only when no migration ran."
    blocks: Blocks = [
        header(title),
        *sections(
            [change_line(t) for t in run.targets],
            max_blocks=MAX_MESSAGE_BLOCKS - 6,
            noun="more services",
        ),
        section(f"*Reason:* {reason_words(run)}"),
        *([section(warning)] if warning else []),
        context(f"{how} Only you can answer.{expires}"),
        actions(
            f"rollback:{run.id}",
            [
                button(
                    action_id=ROLLBACK_CONFIRM_ACTION,
                    text="Roll back the code anyway" if warning else "Roll back",
                    value=run.id,
                    style="danger",
                ),
                button(action_id=ROLLBACK_CANCEL_ACTION, text="Cancel", value=run.id),
            ],
        ),
    ]
    fallback = f"{title} {counted(len(run.active_targets), 'service')}"
    if warning:
        fallback += ": the database will not go back with the code"
    return fallback, blocks


def rollback_outcome(run: Deployment) -> str | None:
    """How a rollback run ended, in the runbook's tone; None while it goes on."""
    head = (
        f"Rollback ID: {run.id}\nEnvironment: {run.environment}\n"
        + (f"Reverts: deployment {run.reverts}\n" if run.reverts else "")
        + f"Reason: {reason_words(run)}\n"
    )
    if run.state is DeploymentState.SUCCEEDED:
        return f"✅ Rollback complete\n{head}All services restored, healthy and operational"
    if run.state is DeploymentState.ROLLBACK_FAILED:
        stuck = [t for t in run.active_targets if t.status is TargetStatus.ROLLBACK_FAILED]
        names = ", ".join(f"`{t.service}`" for t in stuck) or "some services"
        return (
            f"🚨 Rollback FAILED\n{head}"
            f"Error: {kept(run.error, run.error_line, default='unknown')}\n"
            "⚠️ ACTION REQUIRED: Manual investigation needed\n"
            f"The rollback did not complete for {names}."
        )
    return never_started(run, nothing="Nothing was rolled back.")


def rollback_notice(run: Deployment, targets: Sequence[Target]) -> str:
    """Seed 001's rollback communication, once for every service in `targets` taken back.

    A deploy's automatic rollback goes from its target version back to the current one; a
    rollback run goes from what ran (`current_version`) to its target. One service reads as the
    runbook's template; several are listed, so the runbook's block is not repeated per service.
    """

    def versions(t: Target) -> tuple[str, str]:
        old = t.current_version if run.is_rollback else t.target_version
        new = t.target_version if run.is_rollback else t.current_version
        return old or "unknown", new or "previous task definition"

    why = (
        reason_words(run)
        if run.is_rollback
        else kept(run.error, run.error_line, default="deployment failed")
    )
    tail = (
        f"*Reason*: {clip(why, _NOTICE_REASON)}\n"
        f"*Time*: {when(run.finished_at or run.updated_at)}\n\n"
        "Investigating root cause. Updates to follow."
    )
    if len(targets) == 1:
        old, new = versions(targets[0])
        what = f"*Service*: {targets[0].service}\n*From Version*: {old}\n*To Version*: {new}\n"
    else:
        head = f"*Services* ({len(targets)}):\n"
        listed = [f"• {t.service}: {' → '.join(versions(t))}" for t in targets]
        room = MAX_SECTION_TEXT - len(head) - len(tail) - 40
        what = head + join_lines(listed, room, noun="more services") + "\n"
    return "🔄 *Deployment Rollback*\n\n" + what + tail


def roll_back_button(
    run: Deployment, *, action_id: str, text: str, value: str, note: str = ""
) -> Block:
    """A **Roll back** button for a successful deploy, asking first which services it takes back
    (those no rollback took back yet); `note` (plain text) goes first in the question."""
    names = [t.service for t in run.not_taken_back]
    listed = join_lines(names, 150, noun="more").replace("\n", ", ")
    return button(
        action_id=action_id,
        text=text,
        value=value,
        style="danger",
        confirm_with=confirm(
            title=f"Roll back deployment {run.id}?",
            text=(
                f"{note}This takes {counted(len(names), 'service')} in {run.environment} back "
                f"to the versions they ran before: {listed}."
            ),
            ok="Roll back",
        ),
    )
