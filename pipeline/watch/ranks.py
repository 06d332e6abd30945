"""The Mann–Whitney U rank test, one-sided: is a sample taken after a change larger than one
taken before it? (Kayenta judges canaries with it.) No I/O, no scipy.

With `before` of n1 values and `after` of n2, every value is ranked among all n = n1 + n2
(tied values share the mean of their ranks), and

    U = R_after - n2 (n2 + 1) / 2

counts the pairs (b, a) with a > b, a tie counting one half. Without a difference U has mean
n1 n2 / 2 and, with t_k values in the k-th group of ties, variance

    n1 n2 / 12 * ((n + 1) - sum(t_k^3 - t_k) / (n (n - 1)))

so z = (U - n1 n2 / 2 - 1/2) / sd (the half a continuity correction), and p is the normal's
upper tail beyond z. The approximation is good from about eight values a side, which is why a
comparison asks for a minimum number of them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RankTest:
    """The statistic of `after` against `before`, its z-score and one-sided p ("after larger")."""

    u: float
    z: float
    p: float


def _rank_sum(before: Sequence[float], after: Sequence[float]) -> float:
    """The sum of the ranks of `after` among both samples, ties given their mean rank."""
    ordered = sorted([(v, False) for v in before] + [(v, True) for v in after])
    total = 0.0
    i = 0
    while i < len(ordered):
        j = i
        while j < len(ordered) and ordered[j][0] == ordered[i][0]:
            j += 1
        rank = (i + 1 + j) / 2  # ranks i+1 .. j, their mean
        total += rank * sum(1 for _, is_after in ordered[i:j] if is_after)
        i = j
    return total


def rank_test(before: Sequence[float], after: Sequence[float]) -> RankTest:
    """Mann–Whitney U of `after` against `before`, one-sided, normal approximation with tie
    and continuity corrections. Every value tied (no spread at all): z 0 and p 1."""
    n1, n2 = len(before), len(after)
    if n1 == 0 or n2 == 0:
        raise ValueError("A rank test needs at least one value on each side.")
    n = n1 + n2
    u = _rank_sum(before, after) - n2 * (n2 + 1) / 2
    ties = sum(t**3 - t for t in Counter([*before, *after]).values())
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0:
        return RankTest(u=u, z=0.0, p=1.0)
    z = (u - n1 * n2 / 2 - 0.5) / math.sqrt(variance)
    return RankTest(u=u, z=z, p=0.5 * math.erfc(z / math.sqrt(2)))
