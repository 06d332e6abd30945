"""Judging a watched service's minutes: seed 004's thresholds, sustained breaches only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.kernel.config.watch import Thresholds, WatchSettings
from pipeline.kernel.traffic import Minute
from pipeline.watch import Signal, judge

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
SEED = Thresholds.model_validate({})


def _minutes(n: int, **fields: float) -> list[Minute]:
    return [Minute(at=T0 + timedelta(minutes=i), **fields) for i in range(n)]


def _judge(minutes: list[Minute], n: int, *, target_group: bool = True):
    return judge(minutes, SEED, now=T0 + timedelta(minutes=n), since=T0, target_group=target_group)


def test_sustained_5xx_above_five_percent_for_five_minutes_breaches() -> None:
    minutes = _minutes(6, requests=100, errors_5xx=12)

    judgement = _judge(minutes, 6)

    assert [r.signal for r in judgement.breaching] == [Signal.ERROR_RATE]
    assert "5xx 12.0% (> 5.0% for 5m)" in judgement.figures()


def test_a_spike_shorter_than_the_duration_does_not_breach() -> None:
    minutes = _minutes(6, requests=100, errors_5xx=1)
    minutes[4] = Minute(at=minutes[4].at, requests=100, errors_5xx=50)

    assert _judge(minutes, 6).breaching == ()


def test_slow_average_responses_breach_after_ten_minutes_not_before() -> None:
    minutes = _minutes(10, requests=100, avg_response_s=2.5)

    assert [r.signal for r in _judge(minutes, 10).breaching] == [Signal.AVG_RESPONSE]
    assert _judge(minutes[:9], 9).breaching == ()


def test_no_data_for_a_whole_duration_is_missing_not_healthy() -> None:
    judgement = _judge(_minutes(20, cpu_percent=10, memory_percent=10), 20)

    assert {r.signal for r in judgement.missing} == {Signal.ERROR_RATE, Signal.AVG_RESPONSE}
    assert judgement.breaching == ()


def test_without_a_target_group_only_ecs_signals_are_judged() -> None:
    judgement = _judge(_minutes(16, cpu_percent=95, memory_percent=20), 16, target_group=False)

    assert [r.signal for r in judgement.readings] == [Signal.CPU, Signal.MEMORY]
    assert [r.signal for r in judgement.breaching] == [Signal.CPU]


def test_a_service_override_keeps_the_environments_other_thresholds() -> None:
    watch = WatchSettings.model_validate(
        {"thresholds": {"max_5xx_ratio": 0.02}, "services": {"auth-svc": {"error_for": "2m"}}}
    )

    auth = watch.thresholds_for("auth-svc")

    assert (auth.max_5xx_ratio, auth.error_for_s, auth.max_cpu_percent) == (0.02, 120.0, 80.0)


def test_production_is_watched_a_day_and_staging_not_by_default() -> None:
    watch = WatchSettings.model_validate({})

    assert (watch.period_in("production"), watch.period_in("staging")) == (86400.0, 0.0)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"thresholds": {"max_5xx_ratio": 1.5}}, "less than or equal to 1"),
        ({"thresholds": {"error_for": "30s"}}, "error_for must be at least 1m"),
        ({"thresholds": {"max_cpu_percent": 120}}, "less than or equal to 100"),
        ({"every": "10s"}, "watch.every must be between 1m and 1h"),
        ({"period": "30d"}, "watch.period must be at most 7d"),
    ],
)
def test_out_of_range_watch_settings_are_refused(table: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WatchSettings.model_validate(table)
