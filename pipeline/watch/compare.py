"""Compared with before: each signal's minutes after a deploy against the same signal's minutes
in the hour before it started (no I/O, no clock).

A signal regressed when the rank test finds its minutes after larger than before (one-sided p
under `regression_p`) and its mean rose by at least the minimum effect: `regression_change`
of its mean before, and never less than the signal's absolute floor. Too few minutes with data
on either side is no verdict. A regression is a warning, never a rollback: the thresholds
alone decide those.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import fmean

from pipeline.kernel.config.watch import Thresholds
from pipeline.kernel.traffic import Minute
from pipeline.watch.ranks import rank_test
from pipeline.watch.signals import Signal, format_value, values_of

# A baseline as stored: each signal's name (`Signal.value`) -> its minutes' values.
Baseline = Mapping[str, Sequence[float]]


@dataclass(frozen=True)
class Regression:
    """A signal worse after the deploy than before it: both means and the test's p."""

    signal: Signal
    before: float
    after: float
    p: float

    def figure(self) -> str:
        """`5xx 0.1% → 0.9%, p < 0.01`: the means as people read them."""
        before = format_value(self.signal, self.before)
        after = format_value(self.signal, self.after)
        return f"{self.signal.value} {before} → {after}, {_p(self.p)}"


def baseline_of(
    minutes: Sequence[Minute], signals: Iterable[Signal], *, start: datetime, end: datetime
) -> dict[str, tuple[float, ...]]:
    """What to keep of the minutes before a deploy: each signal's values in [start, end)."""
    return {s.value: tuple(values_of(minutes, s, start=start, end=end)) for s in signals}


def _floor(signal: Signal, t: Thresholds) -> float:
    if signal is Signal.ERROR_RATE:
        return t.regression_5xx
    if signal in (Signal.CPU, Signal.MEMORY):
        return t.regression_utilisation
    return t.regression_response_s


def compare(
    baseline: Baseline,
    minutes: Sequence[Minute],
    signals: Iterable[Signal],
    thresholds: Thresholds,
    *,
    start: datetime,
    end: datetime,
    min_samples: int,
) -> tuple[Regression, ...]:
    """The `signals` whose minutes in [start, end) regressed against `baseline`."""
    found = []
    for signal in signals:
        before = baseline.get(signal.value, ())
        after = values_of(minutes, signal, start=start, end=end)
        if min(len(before), len(after)) < min_samples:
            continue
        mean_before, mean_after = fmean(before), fmean(after)
        least = max(_floor(signal, thresholds), mean_before * thresholds.regression_change)
        if mean_after - mean_before < least:
            continue
        p = rank_test(before, after).p
        if p < thresholds.regression_p:
            found.append(Regression(signal, before=mean_before, after=mean_after, p=p))
    return tuple(found)


def _p(p: float) -> str:
    for bound in (0.001, 0.01):
        if p < bound:
            return f"p < {bound:g}"
    return f"p = {p:.2f}"
