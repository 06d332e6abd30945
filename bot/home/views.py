"""The App Home as Block Kit: one person's dashboard (`commands.home.Dashboard`) as a `home`
view, inside Slack's limits for a Home tab (100 blocks, 3000 characters a section).

Typed text (lock reasons, incident summaries) is escaped; people are mentions; times are Slack
dates, so each reader sees their own time zone. Nothing here reads the clock: the same state
draws the same view, so an unchanged Home is not published again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.blocks import (
    MAX_MODAL_BLOCKS,
    MAX_SECTION_TEXT,
    Blocks,
    context,
    divider,
    header,
    section,
    sections,
)
from bot.deploy.views import approval_buttons, run_state, summary_text, target_line
from bot.mrkdwn import escape, join_lines, mention, when
from commands.home import Dashboard, EnvironmentHome
from pipeline.kernel.text import counted
from store.deploy.models import Deployment

# Slack: a Home tab holds at most 100 blocks (the same as a modal).
MAX_HOME_BLOCKS = MAX_MODAL_BLOCKS
# Requests shown with their buttons; past this, the Home says how many more wait in channels.
MAX_WAITING_SHOWN = 20
# A rollback window names its services up to this many, else counts them.
MAX_SERVICES_NAMED = 3
# What of a request's services the Home lists before "… and N more".
MAX_REQUEST_TEXT = 1200
HOME_CALLBACK = "chatops_home"


def home_view(dashboard: Dashboard, *, notice: str | None = None) -> dict[str, Any]:
    """The Home tab of `dashboard.viewer`; `notice` answers their last click on it (mrkdwn)."""
    blocks: Blocks = [
        header("🚀 ChatOps: deploys, rollbacks and incidents"),
        context(
            f"What the bot is doing, as {mention(dashboard.viewer)} sees it. It updates as "
            "things change; the cards in the channels have the details."
        ),
    ]
    if notice:
        blocks.append(section(f"💬 *Your last click:* {notice}"))
    blocks += _waiting(dashboard)
    shown = 0
    for env in dashboard.environments:
        room = MAX_HOME_BLOCKS - len(blocks) - 1
        if room < 3:
            break
        blocks += _environment(env, max_blocks=room)
        shown += 1
    left = len(dashboard.environments) - shown
    if left:
        blocks.append(context(f"… and {left} more environments: `/deploy status <environment>`"))
    return {"type": "home", "callback_id": HOME_CALLBACK, "blocks": blocks}


def _waiting(dashboard: Dashboard) -> Blocks:
    waiting = [(env, run) for env in dashboard.environments for run in env.waiting_for_you]
    if not waiting:
        return [section("✅ *Waiting for you:* nothing. Requests you may approve show up here.")]
    blocks: Blocks = [header(f"👀 Waiting for you ({len(waiting)})")]
    for env, run in waiting[:MAX_WAITING_SHOWN]:
        buttons = approval_buttons(run, confirm_buttons=env.confirm_buttons)
        blocks += [section(_request(run)), buttons]
    more = len(waiting) - MAX_WAITING_SHOWN
    if more > 0:
        blocks.append(context(f"… and {more} more: their cards are in the channels."))
    return blocks


def _request(run: Deployment) -> str:
    where = f" in <#{run.channel_id}>" if run.channel_id else ""
    due = f", expires {when(run.approval_due_at)}" if run.approval_due_at else ""
    head = (
        f"*{summary_text(run)}*\nRequested by {mention(run.requested_by)}{where} · approvals "
        f"{len(run.approved_by)}/{run.required_approvals}{due}"
    )
    if run.break_glass:
        head += f"\n🔥 *Break-glass*: {escape(run.break_glass)}"
    changes = join_lines([target_line(t) for t in run.active_targets], MAX_REQUEST_TEXT)
    return f"{head}\n{changes}"


def _environment(env: EnvironmentHome, *, max_blocks: int) -> Blocks:
    yours = [f"`{r.id}`" for r in env.waiting_for_you]
    lines = [
        *([f"👀 Waiting for your approval: {', '.join(yours)} (above)"] if yours else []),
        *_running(env.running, env.canary_stages),
        *_windows(env.windows),
        _lock(env),
        _schedule(env),
        *_incidents(env),
        *_awaiting(env.awaiting_others),
    ]
    body = sections(lines, max_blocks=max_blocks - 2, noun="more")
    return [header(f"{env.name}"), *body, divider()]


def _running(runs: Sequence[Deployment], canary_stages: int) -> list[str]:
    if not runs:
        return ["🟢 Nothing running."]
    lines = ["*Running*"]
    for run in runs:
        where = f" in <#{run.channel_id}>" if run.channel_id else ""
        state = run_state(run, canary_stages=canary_stages)
        lines.append(f"• {summary_text(run)} by {mention(run.requested_by)}{where}")
        if state:
            lines.append(f"      ↳ {state}")
    return lines


def _windows(runs: Sequence[Deployment]) -> list[str]:
    lines = []
    for run in runs:
        if run.rollback_deadline is None:
            continue
        left = run.not_taken_back
        services = (
            ", ".join(f"`{t.service}`" for t in left)
            if len(left) <= MAX_SERVICES_NAMED
            else counted(len(left), "service")
        )
        lines.append(
            f"↩️ Rollback window of `{run.id}` ({services}) open until "
            f"{when(run.rollback_deadline)}: its card's *Roll back* needs no approval."
        )
    return lines


def _lock(env: EnvironmentHome) -> str:
    lock = env.lock
    if lock is None:
        return "🔓 Not locked"
    until = f" until {when(lock.until)}" if lock.until else " until `/deploy unlock`"
    reason = escape(lock.reason or "no reason given")
    return f"🔒 Locked by {mention(lock.holder)} since {when(lock.since)}{until}: {reason}"


def _schedule(env: EnvironmentHome) -> str:
    if env.freeze is not None:
        f = env.freeze
        return f"🧊 *Frozen* {f.start} to {f.end} ({env.timezone}): {escape(f.reason)}"
    if not env.deploy_windows:
        return "🕒 No deploy windows: deploys any time"
    windows = f"{', '.join(env.deploy_windows)}, {env.timezone}"
    if env.open_now:
        return f"🕒 Inside a deploy window ({windows})"
    nxt = f"; the next opens {when(env.next_open)}" if env.next_open else ""
    return f"🕒 Outside the deploy windows ({windows}){nxt}"


def _incidents(env: EnvironmentHome) -> list[str]:
    lines = []
    for inc in env.incidents:
        frozen = env.frozen_by.get(inc.id)
        freezes = " · freezes deploys of " + ", ".join(f"`{s}`" for s in frozen) if frozen else ""
        lines.append(
            f"🚨 *{inc.severity.upper()}* {escape(inc.summary)} · {inc.status.value} · "
            f"war room <#{inc.channel_id}> · commander {mention(inc.commander)}{freezes}"
        )
    return lines


def _awaiting(runs: Sequence[Deployment]) -> list[str]:
    if not runs:
        return []
    return [
        "*Awaiting other approvers*",
        *(
            f"• {summary_text(r)} by {mention(r.requested_by)} · "
            f"{len(r.approved_by)}/{r.required_approvals}"
            for r in runs
        ),
    ]


def notice_text(text: str) -> str:
    """A reply to a click on the Home tab, inside one section."""
    return join_lines(text.splitlines(), MAX_SECTION_TEXT - 40)
