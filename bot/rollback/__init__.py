"""The rollback feature on Slack: its views (the confirmation question, the rollback card text)."""

from __future__ import annotations
