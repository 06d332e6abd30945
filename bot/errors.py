"""The one funnel from exceptions to what a user reads in Slack."""

from __future__ import annotations

import logging
import secrets

from pipeline.errors import ChatOpsError

log = logging.getLogger(__name__)


def user_text(exc: BaseException) -> str:
    """What to tell the user: a ChatOpsError's own message, else a reference to the log."""
    if isinstance(exc, ChatOpsError):
        return exc.user_message
    ref = secrets.token_hex(3)
    log.error("unhandled error (ref %s)", ref, exc_info=exc)
    return f"Something went wrong on our side (ref `{ref}`). Nothing else was changed."
