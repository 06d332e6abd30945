"""A watch of one service after a successful run, and each alert it raised (raw IDs only)."""

from __future__ import annotations

import enum
from datetime import datetime

from store.values import FrozenModel


class WatchState(enum.Enum):
    WATCHING = "watching"
    ENDED = "ended"


class AlertKind(enum.Enum):
    BREACH = "breach"
    ROLLED_BACK = "rolled_back"
    NO_DATA = "no_data"
    REGRESSION = "regression"
    """Worse than before the deploy, under the thresholds: a warning, never a rollback."""


class Watch(FrozenModel):
    """One service watched after deployment `deployment_id`.

    `alerted` holds the signals whose breach was alerted and has not recovered yet (a new alert
    for one needs it to recover first); `missing_said` those whose missing data was said;
    `regressed` those warned of as worse than before (once each). `baseline` is each signal's
    minutes before the deploy, read once (None: not read yet).
    """

    id: str
    deployment_id: str
    service: str
    environment: str
    started_at: datetime
    ends_at: datetime
    next_check_at: datetime
    state: WatchState
    alerted: frozenset[str] = frozenset()
    missing_said: frozenset[str] = frozenset()
    regressed: frozenset[str] = frozenset()
    baseline: dict[str, tuple[float, ...]] | None = None
    figures: str | None = None
    failure: str | None = None
    outcome: str | None = None
    alerts: int = 0


class WatchAlert(FrozenModel):
    """An alert recorded before it is posted: `posted_at` None means Slack has not taken it.

    `seq` numbers the alerts of one watch (1, 2, ...). `tried_at` is when its post was first
    asked of Slack: a post tried and not confirmed may be in the channel already, so it is
    looked for before it is posted again. `ts` is its message once Slack took it.
    """

    watch_id: str
    seq: int
    at: datetime
    kind: AlertKind
    signals: tuple[str, ...]
    figures: str
    posted_at: datetime | None = None
    tried_at: datetime | None = None
    ts: str | None = None
