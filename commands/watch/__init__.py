"""The watch after a successful deploy or rollback: start, check on timers, alert, end."""

from __future__ import annotations

from commands.watch.usecases import PostDeployWatch, watch_timer

__all__ = ["PostDeployWatch", "watch_timer"]
