"""What people ask for, without Slack types: one package per feature (deploy, rollback, canary,
gates, health, incident: parse, use cases), which never import each other. What they share:
`runs` (the life of a run), `access`, `exchange`, `parsing`; `router` picks the feature that
answers `/deploy` text.

Handlers take an `Invocation`, `Click` or `Submission` and answer an `Outcome` (or `Later`):
see `commands/exchange.py`.
"""

from __future__ import annotations

__all__: list[str] = []
