"""What people ask for, without Slack types: one module family per feature (parse, use cases).

Handlers take an `Invocation`, `Click` or `Submission` and answer an `Outcome` (or `Later`):
see `commands/exchange.py`.
"""

from __future__ import annotations

__all__: list[str] = []
