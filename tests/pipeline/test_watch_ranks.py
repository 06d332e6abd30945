"""Compared with before: the Mann–Whitney U rank test, and the warnings it gives (or not)."""

from __future__ import annotations

import math
import random
import re
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.kernel.config.watch import Thresholds
from pipeline.kernel.traffic import Minute
from pipeline.watch import Signal, baseline_of, compare, rank_test

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
SEED = Thresholds.model_validate({})
ALL = tuple(Signal)


def test_u_and_p_of_two_samples_without_ties() -> None:
    # before 1..5, after 6..10: every after value beats every before value, so U = 5 * 5 = 25.
    # Mean n1 n2 / 2 = 12.5; variance n1 n2 (n + 1) / 12 = 25 * 11 / 12 = 22.917, sd 4.787;
    # z = (25 - 12.5 - 0.5) / 4.787 = 2.5067; upper tail p = 0.00609 (as scipy's asymptotic
    # `mannwhitneyu(after, before, alternative="greater")` gives).
    test = rank_test([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])

    assert test.u == 25
    assert test.z == pytest.approx(2.5067, abs=1e-4)
    assert test.p == pytest.approx(0.006093, abs=1e-6)


def test_u_and_p_with_ties_take_the_tie_correction() -> None:
    # before 1 1 2 2, after 2 3 3 3. Ranks: the 1s 1.5 each, the 2s (3rd to 5th) 4 each, the 3s
    # (6th to 8th) 7 each; R_after = 4 + 3 * 7 = 25, U = 25 - 4 * 5 / 2 = 15 (pairs: 2 beats
    # both 1s and ties both 2s, 2.5 + 0.5 = 3; each 3 beats all four, 12). Ties: groups of 2,
    # 3 and 3, sum(t^3 - t) = 6 + 24 + 24 = 54; variance 16 / 12 * (9 - 54 / 56) = 10.714,
    # sd 3.2733; z = (15 - 8 - 0.5) / 3.2733 = 1.9858; p = 0.02353.
    test = rank_test([1, 1, 2, 2], [2, 3, 3, 3])

    assert test.u == 15
    assert test.z == pytest.approx(1.9858, abs=1e-4)
    assert test.p == pytest.approx(0.02353, abs=1e-5)


def test_one_sided_a_sample_smaller_after_is_not_significant() -> None:
    assert rank_test([6, 7, 8, 9, 10], [1, 2, 3, 4, 5]).p > 0.99
    assert rank_test([3.0] * 10, [3.0] * 10).p == 1.0


def _minutes(start: datetime, ratios: list[float], **fields: float) -> list[Minute]:
    return [
        Minute(at=start + timedelta(minutes=i), requests=1000, errors_5xx=r * 1000, **fields)
        for i, r in enumerate(ratios)
    ]


def _regressions(before: list[Minute], after: list[Minute], *, min_samples: int = 10):
    baseline = baseline_of(before, ALL, start=T0 - timedelta(hours=1), end=T0)
    return compare(
        baseline,
        after,
        ALL,
        SEED,
        start=T0,
        end=T0 + timedelta(hours=1),
        min_samples=min_samples,
    )


def _noisy(rng: random.Random, n: int, centre: float) -> list[float]:
    """`n` minutes of 5xx ratios around `centre`: 1000 requests a minute, each failing alike
    (the count of 5xx a minute is Poisson, drawn as Knuth does)."""
    return [_poisson(rng, 1000 * centre) / 1000 for _ in range(n)]


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def test_a_crafted_5xx_regression_under_the_threshold_is_found_with_its_figures() -> None:
    rng = random.Random(7)
    before = _minutes(T0 - timedelta(hours=1), _noisy(rng, 60, 0.001), cpu_percent=30)
    after = _minutes(T0, _noisy(rng, 30, 0.009), cpu_percent=30)

    [found] = _regressions(before, after)

    assert found.signal is Signal.ERROR_RATE
    assert found.figure().startswith("5xx 0.1% → 0.9%, p < 0.001")


def _quiet(rng: random.Random, at: datetime) -> Minute:
    """A minute of a quiet service: 5xx around 0.2%, answers, CPU and memory jittering."""
    return Minute(
        at=at,
        requests=1000,
        errors_5xx=1000 * _noisy(rng, 1, 0.002)[0],
        avg_response_s=rng.gauss(0.2, 0.03),
        cpu_percent=rng.gauss(40, 5),
        memory_percent=rng.gauss(50, 2),
    )


def test_same_distribution_noise_gives_no_warning_across_many_seeds() -> None:
    for seed in range(200):
        rng = random.Random(seed)
        before = [_quiet(rng, T0 - timedelta(minutes=60 - i)) for i in range(60)]
        after = [_quiet(rng, T0 + timedelta(minutes=i)) for i in range(40)]

        assert _regressions(before, after) == (), seed


def test_too_few_minutes_on_either_side_is_no_verdict() -> None:
    rng = random.Random(3)
    before = _minutes(T0 - timedelta(hours=1), _noisy(rng, 60, 0.001))
    after = _minutes(T0, _noisy(rng, 9, 0.02))

    assert _regressions(before, after) == ()
    assert _regressions(before[-9:], _minutes(T0, _noisy(rng, 30, 0.02))) == ()
    assert [r.signal for r in _regressions(before, after, min_samples=9)] == [Signal.ERROR_RATE]


def test_a_significant_rise_smaller_than_the_minimum_effect_is_no_warning() -> None:
    # 0.10% to 0.15%: the rank test is sure of it, but half a point of 5xx it is not.
    before = _minutes(T0 - timedelta(hours=1), [0.0010] * 60)
    after = _minutes(T0, [0.0015] * 30)

    assert rank_test([0.0010] * 60, [0.0015] * 30).p < 0.001
    assert _regressions(before, after) == ()


def test_slower_responses_are_compared_too() -> None:
    rng = random.Random(11)
    before = [
        Minute(at=T0 - timedelta(minutes=60 - i), avg_response_s=rng.gauss(0.2, 0.02))
        for i in range(60)
    ]
    after = [
        Minute(at=T0 + timedelta(minutes=i), avg_response_s=rng.gauss(0.6, 0.02)) for i in range(20)
    ]

    [found] = _regressions(before, after)

    assert found.signal is Signal.AVG_RESPONSE
    assert re.fullmatch(r"avg response 0\.2\ds → 0\.6\ds, p < 0\.001", found.figure())
