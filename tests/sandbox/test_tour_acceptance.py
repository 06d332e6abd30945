"""Issue 16's acceptance on the sandbox itself: the README tour (scripts/tour_transcript.py's
steps, the canary's Hold, Resume and Promote, a broken staging deploy, the 5xx gate) run in a
fresh sandbox, with every version of every message its local Slack showed checked as
tests/test_bad_night.py checks the bad night: no card contradicting itself, every person a
mention, failures told to the channel, threads within the noise budget, no raw ids or JSON.

It runs on the sandbox's virtual time: the bakes pass whenever the tour waits for them."""

from __future__ import annotations

import importlib.util
import logging
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import aiohttp
import pytest

from sandbox.people import PEOPLE
from sandbox.stack import Options, open_sandbox
from tests.fakes.clock import AutojumpClock
from tests.transcript_checks import Recorder, problems

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "tour_transcript.py"
NAMES = [p.name for p in PEOPLE]
# Issue 16's budget: an 8-service production deploy's progress posts at most ~15 thread
# replies. What people did (hold, resume, promote, each naming who) is said besides.
THREAD_BUDGET = 15


def tour_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tour_transcript_acceptance", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
async def test_the_readme_tour_tells_the_truth_names_people_and_stays_short(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    tt = tour_script()
    with tempfile.TemporaryDirectory(prefix="tour-acceptance-") as directory:
        clock = AutojumpClock()
        options = Options(directory=Path(directory), port=0, canary_bakes=tt.BAKES, clock=clock)
        async with (
            clock.running(),
            open_sandbox(options) as sandbox,
            aiohttp.ClientSession() as http,
        ):
            recorder = Recorder(sandbox.slack)
            tour = tt.Tour(sandbox, http)
            try:
                await tt.run_tour(tour)
                await tt._settle(tour)
            finally:
                tour.close()
            recorder.pump()

    assert problems(recorder, names=NAMES) == []
    assert caplog.records, "the bot logged through the root logger"
    assert [r.getMessage() for r in caplog.records if r.exc_info is not None] == []
    cards = {v.ts for v in recorder.cards()}
    assert cards, "the tour posted cards"
    progress = {
        ts: {v.ts for v in recorder.replies_to(ts) if "by <@" not in v.shown} for ts in cards
    }
    assert max(len(replies) for replies in progress.values()) <= THREAD_BUDGET
    failures = [v for v in recorder.loud() if "FAILED" in v.text]
    assert failures, "the broken staging deploy was told to the channel"
    assert all("<@" in v.shown for v in failures)
