"""`/rollback`: parse and use cases."""

from __future__ import annotations
