"""The App Home: what the bot's Home tab shows one person, read from the store (no Slack types)."""

from __future__ import annotations

from commands.home.dashboard import Dashboard, EnvironmentHome, HomeReader, Snapshot

__all__ = ["Dashboard", "EnvironmentHome", "HomeReader", "Snapshot"]
