"""`/rollback`: parse, use cases, the Roll back buttons, the closing of rollback windows, and
what the deploy records say to a rollback (history)."""

from __future__ import annotations
