"""The post-deploy watch's rows: one watch per (run, service), and the alerts it raised."""

from __future__ import annotations

from store.watch.models import AlertKind, Watch, WatchAlert, WatchState
from store.watch.repository import Watches

__all__ = ["AlertKind", "Watch", "WatchAlert", "WatchState", "Watches"]
