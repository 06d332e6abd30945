"""The watch after a deploy: which signals breach their thresholds, and for how long."""

from __future__ import annotations

from pipeline.watch.signals import Judgement, Reading, Signal, judge

__all__ = ["Judgement", "Reading", "Signal", "judge"]
