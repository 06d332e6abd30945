"""Block Kit building blocks shared by the deploy and incident views."""

from __future__ import annotations

from typing import Any

# Slack: a section's (and a context element's) text may hold at most 3000 characters.
MAX_SECTION_TEXT = 3000

Block = dict[str, Any]


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:MAX_SECTION_TEXT]}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:MAX_SECTION_TEXT]}]}
