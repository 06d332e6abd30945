"""The Slack edge and the composition root: Bolt app, listeners, views, server, settings."""

from __future__ import annotations

__all__: list[str] = []
