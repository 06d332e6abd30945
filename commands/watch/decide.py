"""What one check of a watch says: the alert it raises (if any) and what the watch remembers.

A breach comes first, then missing data, then a regression against before the deploy: one
alert a check, and what is not said now is found again at the next check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pipeline.watch import Judgement, Regression
from store.watch import AlertKind, Watch, WatchAlert


@dataclass(frozen=True)
class Decision:
    """A check's alert (None: nothing to say) and the watch's sets after it."""

    alert: WatchAlert | None
    alerted: frozenset[str]
    missing_said: frozenset[str]
    regressed: frozenset[str]


class _Figured(Protocol):
    def figure(self) -> str: ...


def decide(
    watch: Watch, judgement: Judgement, regressions: Sequence[Regression], now: datetime
) -> Decision:
    """A signal stays alerted until it is judged again with data below its threshold; missing
    data is said once per signal for the whole watch, and so is a regression (never of a
    signal breaching or alerted: its alert says more)."""
    breaching = {r.signal.value for r in judgement.breaching}
    missing = {r.signal.value for r in judgement.missing}
    recovered = {r.signal.value for r in judgement.readings if not r.breaching and not r.missing}
    new = breaching - watch.alerted
    alerted = frozenset((watch.alerted - recovered) | breaching)
    unsaid = missing - watch.missing_said
    worse = [
        r
        for r in regressions
        if r.signal.value not in watch.regressed | alerted | watch.alerted | missing
    ]
    if new:
        alert = _alert(watch, now, AlertKind.BREACH, new, judgement.breaching)
        return Decision(alert, alerted, watch.missing_said, watch.regressed)
    if unsaid:
        alert = _alert(watch, now, AlertKind.NO_DATA, unsaid, judgement.missing)
        return Decision(alert, alerted, frozenset(watch.missing_said | unsaid), watch.regressed)
    if worse:
        names = {r.signal.value for r in worse}
        alert = _alert(watch, now, AlertKind.REGRESSION, names, worse)
        return Decision(alert, alerted, watch.missing_said, frozenset(watch.regressed | names))
    return Decision(None, alerted, watch.missing_said, watch.regressed)


def _alert(
    watch: Watch, now: datetime, kind: AlertKind, signals: set[str], found: Sequence[_Figured]
) -> WatchAlert:
    """An alert of `kind` about `signals`, with the figures of what was `found`."""
    return WatchAlert(
        watch_id=watch.id,
        seq=0,
        at=now,
        kind=kind,
        signals=tuple(sorted(signals)),
        figures="; ".join(r.figure() for r in found),
    )
