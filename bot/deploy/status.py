"""`/deploy status <deployment-id>`: a short summary people read at 3 a.m. (state, who, when,
each service's versions and outcome, the rollback window), or with `--json` the whole record of
the runbooks (seed 003), its figures rounded."""

from __future__ import annotations

import json
from typing import Any

from bot.blocks import MAX_SECTION_TEXT
from bot.deploy.views import TARGET_LOOK
from bot.gates.views import gate_lines, is_restore
from bot.mrkdwn import clip, escape, hhmm, mention, mentions, when
from bot.rollback.views import reason_words
from commands.deploy.replies import Record
from pipeline.kernel.config import format_duration
from pipeline.records import deployment_record
from store.deploy.models import Deployment, DeploymentState, Target, TargetStatus

# The summary lists this many services, then says how many more.
SHOWN_SERVICES = 12
# A failure's words in the summary; the record has them whole.
_WHY = 300
_DETAIL = 150
# Figures in the record are kept to this many decimals (0.049999999999999996 -> 0.05).
_DECIMALS = 6


def record_text(record: Record) -> str:
    """The answer to `/deploy status <deployment-id> [--json]`."""
    if record.as_json:
        return _json_text(record)
    run = record.run
    lines = [_head(run), _people(run)]
    times = _times(run)
    if times:
        lines.append(times)
    lines += _services(run)
    if run.is_rollback:
        lines.append(f"Reason: {clip(reason_words(run), _WHY)}")
    if run.error and run.state is not DeploymentState.SUCCEEDED:
        lines.append(f"Why: {clip(escape(run.error), _WHY)}")
    lines += gate_lines(run)
    if run.stages:
        stages = ", ".join(f"{s.weight}% {s.status.value}" for s in run.stages)
        lines.append(f"Canary stages: {stages}")
    window = _window(record)
    if window:
        lines.append(window)
    lines.append(f"The whole record: `/deploy status {run.id} --json`")
    return clip("\n".join(lines), MAX_SECTION_TEXT)


def _head(run: Deployment) -> str:
    if run.is_rollback:
        what = f"*Rollback `{run.id}`*" + (f" of deployment `{run.reverts}`" if run.reverts else "")
        return f"{what} in `{run.environment}`: {run.state.words}"
    noun = "Restore" if is_restore(run) else "Deployment"
    return f"*{noun} `{run.id}`* to `{run.environment}`: {run.state.words}"


def _people(run: Deployment) -> str:
    said = f"Requested by {mention(run.requested_by)} {when(run.created_at)}"
    if run.rejected_by:
        return f"{said} · rejected by {mention(run.rejected_by)}"
    if run.approved_by:
        return f"{said} · approved by {mentions(run.approved_by)}"
    if run.required_approvals == 0:
        return f"{said} · no approval needed"
    return f"{said} · approvals {len(run.approved_by)}/{run.required_approvals}"


def _times(run: Deployment) -> str | None:
    if run.started_at is None:
        return None
    if run.finished_at is None:
        return f"Started {when(run.started_at)}, still going"
    took = format_duration((run.finished_at - run.started_at).total_seconds())
    return f"Started {when(run.started_at)} · finished {when(run.finished_at)} (took {took})"


def _service_line(t: Target) -> str:
    line = f"• `{t.service}` {t.current_version or 'unknown'} → {t.target_version}: "
    line += " ".join(TARGET_LOOK[t.status])
    if t.status in (TargetStatus.FAILED, TargetStatus.ROLLBACK_FAILED) and t.detail:
        line += f" ({clip(escape(t.detail), _DETAIL)})"
    return line


def _services(run: Deployment) -> list[str]:
    lines = [_service_line(t) for t in run.targets[:SHOWN_SERVICES]]
    left = len(run.targets) - SHOWN_SERVICES
    if left > 0:
        lines.append(f"… and {left} more services")
    return lines


def _window(record: Record) -> str | None:
    run = record.run
    if run.reverted_by is not None:
        return f"↩️ Rolled back by rollback `{run.reverted_by}`"
    if run.state is not DeploymentState.SUCCEEDED or run.rollback_deadline is None:
        return None
    if run.window_open(record.now):
        return f"↩️ Rollback available until {hhmm(run.rollback_deadline)}"
    closed = min(run.window_closed_at or run.rollback_deadline, run.rollback_deadline)
    return f"⌛ The rollback window closed at {hhmm(closed)}"


def _json_text(record: Record) -> str:
    run = record.run
    body = json.dumps(
        _rounded(deployment_record(run, now=record.now, window_minutes=record.window_minutes)),
        indent=1,
    )
    head = f"Deployment `{run.id}`: {run.state.words}\n"
    return head + clip(f"```{escape(body)}```", MAX_SECTION_TEXT - len(head))


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, _DECIMALS)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value
