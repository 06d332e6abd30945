"""Steering a canary from its card: Promote, Hold, Resume, Abort."""

from __future__ import annotations
