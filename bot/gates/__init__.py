"""The gates on Slack: their lines on the card, the dry run, an environment's status."""

from __future__ import annotations
