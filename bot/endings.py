"""How a card ends when its run never started: rejected, expired or cancelled while it waited.
Deploy, rollback and restore cards say it the same way, each with its own "Nothing was …"."""

from __future__ import annotations

from bot.mrkdwn import kept, mention
from store.deploy.models import Deployment, DeploymentState


def never_started(run: Deployment, *, nothing: str) -> str | None:
    """The card's last line when `run` ended before it ran, naming who; None otherwise.
    `nothing` is the sentence that says what did not happen ("Nothing was deployed.")."""
    if run.state is DeploymentState.REJECTED:
        who = mention(run.rejected_by) if run.rejected_by else "an approver"
        return f"🛑 Rejected by {who}. {nothing}"
    if run.state is DeploymentState.EXPIRED:
        return f"⌛ Expired: no decision within the approval window. {nothing}"
    if run.state is DeploymentState.CANCELLED:
        why = kept(run.error, run.error_line, default="no reason given")
        return f"🚫 Cancelled: {why}. {nothing}"
    return None
