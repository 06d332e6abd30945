"""`/deploy`: parse (text -> requests), use cases (plan, approve, expire), the deployment record."""

from __future__ import annotations
