"""The deploy feature on Slack: views (the card) and the adapter (the Notifier port)."""

from __future__ import annotations
