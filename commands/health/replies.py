"""What `/health` answers: one row per service."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HealthRow:
    service: str
    healthy: bool | None
    """None: no health URL in this environment."""
    detail: str
    latency_s: float | None
    version: str | None
    running: int | None = None
    desired: int | None = None
    task_definition: str | None = None


@dataclass(frozen=True)
class HealthReport:
    """Reply: one row per service."""

    environment: str
    rows: tuple[HealthRow, ...]
    full: bool
