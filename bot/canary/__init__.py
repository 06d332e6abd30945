"""The canary feature on Slack: its part of the deploy card (stage, bake, figures, buttons)."""

from __future__ import annotations
