"""What the gates answer besides sentences: an environment's status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from store.deploy.locks import Lock
from store.deploy.models import Deployment


@dataclass(frozen=True)
class EnvironmentView:
    """Reply: an environment's lock, windows and freezes, and its runs in progress."""

    environment: str
    now: datetime
    lock: Lock | None
    open_now: bool
    next_open: datetime | None
    freeze: str | None
    windows: tuple[str, ...]
    timezone: str
    in_flight: tuple[Deployment, ...]
