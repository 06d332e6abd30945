"""Getting a plan card in front of people when Slack is slow or the bot died while posting it.

A post whose answer never came (no answer in time, a server error) may still have reached the
channel, so before posting again the card is looked for by its metadata; only a card that is
neither confirmed nor found counts as not posted. No Slack types here: this goes through the
`Notifier` port.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pipeline.kernel.errors import ChatOpsError, OutcomeUnknown
from pipeline.kernel.ports import Clock, Notifier
from store.deploy.models import Deployment

log = logging.getLogger(__name__)

# Posts of one card, at most: the first, and one more when the first is neither confirmed
# nor found in the channel.
POST_ATTEMPTS = 2
# A post Slack did not confirm may show up in the channel a moment later: look, wait, look.
LOOK_AGAIN_S = 5.0


@dataclass(frozen=True)
class Shown:
    """Where the card is (`ts`), whether Slack failed to confirm a post on the way (`slow`),
    and, when there is no card, why (`error`)."""

    ts: str | None
    slow: bool = False
    error: ChatOpsError | None = None


class CardPoster:
    """Posts a run's plan card at most POST_ATTEMPTS times, looking before each repeat, and
    knows which requests this process is getting a card for right now."""

    def __init__(self, *, notifier: Notifier, clock: Clock) -> None:
        self._notifier = notifier
        self._clock = clock
        # Requests whose card this process is posting right now: not orphans.
        self._posting: set[str] = set()

    @contextmanager
    def posting(self, run_id: str) -> Iterator[None]:
        """Count `run_id` as having its card posted by this process while inside (not an
        orphan for the sweep, and a click on an unknown card does not adopt it)."""
        self._posting.add(run_id)
        try:
            yield
        finally:
            self._posting.discard(run_id)

    def is_posting(self, run_id: str) -> bool:
        return run_id in self._posting

    async def show(self, run: Deployment, *, look_first: bool = False) -> Shown:
        """Post the card of `run` (after looking for it, with `look_first`), or find it when
        Slack may have posted it unseen. Never raises for Slack's failures except that
        `look_first` raises UpstreamError when the channel cannot be read (nothing posted)."""
        if look_first:
            ts = await self._notifier.find_card(run)
            if ts is not None:
                return Shown(ts)
        slow = False
        error: ChatOpsError | None = None
        for _ in range(POST_ATTEMPTS):
            try:
                return Shown(await self._notifier.post_card(run), slow=slow)
            except OutcomeUnknown as unknown:
                slow, error = True, unknown
                log.warning(
                    "Slack did not confirm the plan card of %s (%s); looking for it",
                    run.id,
                    unknown.user_message,
                )
            except ChatOpsError as refused:
                # Slack refused the post: nothing was posted this time.
                return Shown(None, slow=slow, error=refused)
            try:
                ts = await self._look(run)
            except ChatOpsError:
                # Neither confirmed nor readable: posting again could show two cards.
                return Shown(None, slow=True, error=error)
            if ts is not None:
                return Shown(ts, slow=True)
        return Shown(None, slow=slow, error=error)

    async def _look(self, run: Deployment) -> str | None:
        ts = await self._notifier.find_card(run)
        if ts is None:
            await self._clock.sleep(LOOK_AGAIN_S)
            ts = await self._notifier.find_card(run)
        return ts
