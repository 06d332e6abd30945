"""The watch after a deploy: which signals breach their thresholds, and for how long; which
regressed against the hour before the deploy."""

from __future__ import annotations

from pipeline.watch.compare import Baseline, Regression, baseline_of, compare
from pipeline.watch.ranks import RankTest, rank_test
from pipeline.watch.signals import Judgement, Reading, Signal, judge
from pipeline.watch.sources import Source, source_of

__all__ = [
    "Baseline",
    "Judgement",
    "RankTest",
    "Reading",
    "Regression",
    "Signal",
    "Source",
    "baseline_of",
    "compare",
    "judge",
    "rank_test",
    "source_of",
]
