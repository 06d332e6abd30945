"""Judging a watched service's minutes against its thresholds (no I/O, no clock).

A signal breaches when every minute of its last `for` duration that has data is above its
threshold, and at least half of those minutes have data: a spike shorter than the duration, or
one bad minute among minutes without traffic, is not a breach. A signal with no data for the
whole duration is `missing`, never taken for health.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pipeline.kernel.config.watch import Thresholds
from pipeline.kernel.traffic import Minute

# Of the minutes of a duration, at least this share must have data for a breach to count.
MIN_COVERAGE = 0.5


class Signal(enum.Enum):
    ERROR_RATE = "5xx"
    AVG_RESPONSE = "avg response"
    P99_RESPONSE = "p99 response"
    CPU = "CPU"
    MEMORY = "memory"

    @property
    def needs_target_group(self) -> bool:
        return self in (Signal.ERROR_RATE, Signal.AVG_RESPONSE, Signal.P99_RESPONSE)


@dataclass(frozen=True)
class Reading:
    """A signal's latest value, its threshold, and how it stands over its duration."""

    signal: Signal
    latest: float | None
    threshold: float
    for_s: float
    breaching: bool
    missing: bool

    def figure(self) -> str:
        """`5xx 12.0% (> 5.0% for 5m)`: the value as people read it."""
        value = "no data" if self.latest is None else format_value(self.signal, self.latest)
        limit = format_value(self.signal, self.threshold)
        return f"{self.signal.value} {value} (> {limit} for {round(self.for_s / 60)}m)"


@dataclass(frozen=True)
class Judgement:
    readings: tuple[Reading, ...]

    @property
    def breaching(self) -> tuple[Reading, ...]:
        return tuple(r for r in self.readings if r.breaching)

    @property
    def missing(self) -> tuple[Reading, ...]:
        return tuple(r for r in self.readings if r.missing)

    def figures(self) -> str:
        return "; ".join(r.figure() for r in self.readings)


def _error_ratio(m: Minute) -> float | None:
    if not m.requests:
        return None
    return (m.errors_5xx or 0.0) / m.requests


_VALUES: dict[Signal, Callable[[Minute], float | None]] = {
    Signal.ERROR_RATE: _error_ratio,
    Signal.AVG_RESPONSE: lambda m: m.avg_response_s,
    Signal.P99_RESPONSE: lambda m: m.p99_response_s,
    Signal.CPU: lambda m: m.cpu_percent,
    Signal.MEMORY: lambda m: m.memory_percent,
}


def values_of(
    minutes: Sequence[Minute], signal: Signal, *, start: datetime, end: datetime
) -> list[float]:
    """The values `signal` had in the minutes of [start, end) that have data for it."""
    return [v for m in minutes if start <= m.at < end and (v := _VALUES[signal](m)) is not None]


def _limits(t: Thresholds) -> dict[Signal, tuple[float, float]]:
    limits = {
        Signal.ERROR_RATE: (t.max_5xx_ratio, t.error_for_s),
        Signal.AVG_RESPONSE: (t.max_avg_response_s, t.response_for_s),
        Signal.CPU: (t.max_cpu_percent, t.utilisation_for_s),
        Signal.MEMORY: (t.max_memory_percent, t.utilisation_for_s),
    }
    if t.max_p99_response_s is not None:
        limits[Signal.P99_RESPONSE] = (t.max_p99_response_s, t.response_for_s)
    return limits


def judge(
    minutes: Sequence[Minute],
    thresholds: Thresholds,
    *,
    now: datetime,
    since: datetime,
    target_group: bool,
) -> Judgement:
    """How each signal stands at `now`, from the minutes read since the watch began (`since`).

    A signal is judged (breaching or missing) only once its whole duration fits after `since`.
    """
    readings = []
    for signal, (threshold, for_s) in _limits(thresholds).items():
        if signal.needs_target_group and not target_group:
            continue
        start = now - timedelta(seconds=for_s)
        values = values_of(minutes, signal, start=start, end=now)
        latest = next((v for m in reversed(minutes) if (v := _VALUES[signal](m)) is not None), None)
        judged = start >= since
        expected = max(1, int(for_s // 60))
        breaching = (
            judged and len(values) >= expected * MIN_COVERAGE and all(v > threshold for v in values)
        )
        readings.append(
            Reading(
                signal=signal,
                latest=latest,
                threshold=threshold,
                for_s=for_s,
                breaching=breaching,
                missing=judged and not values,
            )
        )
    return Judgement(tuple(readings))


def format_value(signal: Signal, value: float) -> str:
    if signal is Signal.ERROR_RATE:
        return f"{value * 100:.1f}%"
    if signal in (Signal.CPU, Signal.MEMORY):
        return f"{value:.0f}%"
    return f"{value:.2f}s"
