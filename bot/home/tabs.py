"""Publishing the App Home: to each person who opened it, when what it shows changes.

`opened` (Slack's `app_home_opened`) publishes that person's Home at once and remembers them in
the store, so a restart keeps publishing to them. `changed` (anything happened: a request, a
click, a timer, a stage of a run) marks every viewer's Home as behind; one owned task waits
`DEBOUNCE_S` so that a burst of changes makes one publish, then draws each viewer's Home and
publishes the ones that differ from what Slack last accepted (a digest in the store).
Slack's limits are kept: per viewer at most one publish every `MIN_GAP_S` and
`MAX_PER_VIEWER_PER_MINUTE` in any minute, at most `MAX_PUBLISHES_PER_MINUTE` in all
(views.publish is Tier 4, 100+ a minute), and a rate-limited answer waits its Retry-After.
The sweep (`refresh`) catches what time alone changes (a deploy window opening). A click on
the Home tab is answered on it (`tell`): it has no channel. One flush reads the store once for
all the viewers it draws. A person who has not opened the Home for `ACTIVE_DAYS` stops getting
its updates (every change would otherwise publish to everyone who ever looked, within the
app's 100 a minute); opening it again publishes it at once and resumes them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import deque
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.home.views import home_view, notice_text
from bot.slack import SlackGateway, retry_after_s, slack_error, transient
from commands.home import HomeReader, Snapshot
from pipeline.kernel.errors import ChatOpsError
from pipeline.kernel.ports import Clock
from pipeline.tasks import OwnedTasks
from store.home import HomeViewers

log = logging.getLogger(__name__)

# Changes closer together than this make one publish.
DEBOUNCE_S = 1.0
# Slack rate-limits views.publish per user too: each viewer's Home is published at most once
# every MIN_GAP_S and at most MAX_PER_VIEWER_PER_MINUTE times in any minute; the changes made
# meanwhile are drawn together when the time comes.
MIN_GAP_S = 2.0
MAX_PER_VIEWER_PER_MINUTE = 10
# Slack: views.publish is a Tier 4 method (100+ calls a minute per app and workspace).
MAX_PUBLISHES_PER_MINUTE = 100
_MINUTE = timedelta(minutes=1)
# A publish refused for a moment (rate limit, Slack unwell) is tried again this long after.
RETRY_S = 5.0
RETRY_ATTEMPTS = 5
# Who has not opened the Home for this long is no longer kept up to date.
ACTIVE_DAYS = 30.0
_FLUSH = "home"
_GONE = frozenset({"user_not_found", "account_inactive", "user_disabled"})


def view_digest(view: dict[str, Any]) -> str:
    drawn = json.dumps(view, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(drawn.encode()).hexdigest()


class HomeTabs:
    """Keeps every viewer's Home tab in step with the store (see the module docstring)."""

    def __init__(
        self,
        *,
        reader: HomeReader,
        viewers: HomeViewers,
        slack: SlackGateway,
        clock: Clock,
        tasks: OwnedTasks,
    ) -> None:
        self._known: dict[str, datetime] = {}
        """Who opened the Home tab within `ACTIVE_DAYS`, and when last (the store keeps them
        across restarts)."""
        self._behind: set[str] = set()
        self._notices: dict[str, str] = {}
        self._sent: dict[str, deque[datetime]] = {}
        self._recent: deque[datetime] = deque()
        self._not_before: dict[str, datetime] = {}
        self._failures: dict[str, int] = {}
        self._lost: set[str] = set()
        """Viewers Slack shows no Home of ours: published to even when the digest matches."""
        self._reader = reader
        self._viewers = viewers
        self._slack = slack
        self._clock = clock
        self._tasks = tasks

    async def start(self) -> int:
        """Remember who opened the Home before a restart, and bring their Homes up to date.
        Returns how many viewers there are."""
        since = self._clock.now() - timedelta(days=ACTIVE_DAYS)
        self._known = {v.user_id: v.opened_at for v in await self._viewers.all()}
        self._forget_inactive(since)
        self.changed()
        return len(self._known)

    async def opened(self, user_id: str, shown: bool = True) -> None:
        """`user_id` opened the Home tab: publish it to them now (if it is not what they see
        already: `shown` is False when Slack shows them no Home of ours, as after a reinstall),
        and from now on whenever it changes. An earlier click's answer is dropped."""
        if not shown:
            self._lost.add(user_id)
        now = self._clock.now()
        await self._viewers.opened(user_id, at=now)
        self._known[user_id] = now
        self._notices.pop(user_id, None)
        self._behind.add(user_id)
        self._tasks.spawn(_FLUSH, self._flush(debounce=False))

    def changed(self) -> None:
        """Something the Home shows may have changed: redraw every viewer's, soon."""
        if not self._known:
            return
        self._behind |= self._known.keys()
        self._tasks.spawn(_FLUSH, self._flush(debounce=True))

    async def tell(self, user_id: str, text: str) -> None:
        """Answer a click made on the Home tab, on the Home tab (`text` is mrkdwn)."""
        self._notices[user_id] = notice_text(text)
        if user_id not in self._known:
            now = self._clock.now()
            await self._viewers.opened(user_id, at=now)
            self._known[user_id] = now
        self._behind.add(user_id)
        self._tasks.spawn(_FLUSH, self._flush(debounce=False))

    async def refresh(self) -> None:
        """The sweep: redraw every Home (time alone changes some: a window opens), learn who
        opened theirs on another replica, and stop updating the Homes of people who have not
        opened theirs for `ACTIVE_DAYS`."""
        for viewer in await self._viewers.all():
            known = self._known.get(viewer.user_id, viewer.opened_at)
            self._known[viewer.user_id] = max(known, viewer.opened_at)
        self._forget_inactive(self._clock.now() - timedelta(days=ACTIVE_DAYS))
        self.changed()

    def _forget_inactive(self, since: datetime) -> None:
        for user_id in [u for u, at in self._known.items() if at < since]:
            del self._known[user_id]
            self._behind.discard(user_id)

    async def _flush(self, *, debounce: bool) -> None:
        if debounce:
            await self._clock.sleep(DEBOUNCE_S)
        while self._behind:
            now = self._clock.now()
            ready = sorted(u for u in self._behind if self._ready_at(u, now) <= now)
            if not ready:
                wait = min(self._ready_at(u, now) for u in self._behind) - now
                await self._clock.sleep(max(wait.total_seconds(), 0.01))
                continue
            # Taken off before the read: a change made while it reads marks them behind again.
            self._behind.difference_update(ready)
            try:
                seen = await self._reader.snapshot()
            except Exception:
                # Left behind: the next change or the sweep's refresh draws them again.
                log.exception("could not read the App Homes from the store")
                self._behind.update(ready)
                return
            for user_id in ready:
                try:
                    await self._publish(user_id, seen)
                except Exception:
                    # One viewer's Home that cannot be drawn must not leave the others stale.
                    log.exception("could not publish the App Home of %s", user_id)

    def _ready_at(self, user_id: str, now: datetime) -> datetime:
        """When `user_id`'s Home may be published next, by Slack's limits (`now` at the
        earliest)."""
        at = max(now, self._not_before.get(user_id, now))
        sent = self._sent.setdefault(user_id, deque())
        for times in (sent, self._recent):
            while times and times[0] <= now - _MINUTE:
                times.popleft()
        if sent:
            at = max(at, sent[-1] + timedelta(seconds=MIN_GAP_S))
        if len(sent) >= MAX_PER_VIEWER_PER_MINUTE:
            at = max(at, sent[0] + _MINUTE)
        if len(self._recent) >= MAX_PUBLISHES_PER_MINUTE:
            at = max(at, self._recent[0] + _MINUTE)
        return at

    async def _publish(self, user_id: str, seen: Snapshot) -> None:
        try:
            dashboard = await self._reader.dashboard(user_id, seen)
            view = home_view(dashboard, notice=self._notices.get(user_id))
            digest = view_digest(view)
            last = await self._viewers.get(user_id)
            if last is not None and last.digest == digest and user_id not in self._lost:
                return
            now = self._clock.now()
            self._sent.setdefault(user_id, deque()).append(now)
            self._recent.append(now)
            await self._slack.call(
                "show your App Home", self._slack.client.views_publish(user_id=user_id, view=view)
            )
        except ChatOpsError as exc:
            await self._failed(user_id, exc)
            return
        self._failures.pop(user_id, None)
        self._lost.discard(user_id)
        await self._viewers.published(user_id, digest=digest, at=self._clock.now())

    async def _failed(self, user_id: str, exc: ChatOpsError) -> None:
        cause = exc.__cause__
        error = slack_error(cause) if isinstance(cause, SlackApiError) else ""
        if error in _GONE:
            log.info("%s is gone from Slack (%s): no more App Home for them", user_id, error)
            self._known.pop(user_id, None)
            await self._viewers.forget(user_id)
            return
        failures = self._failures.get(user_id, 0) + 1
        if not transient(exc) or failures > RETRY_ATTEMPTS:
            self._failures.pop(user_id, None)
            log.warning("could not publish the App Home of %s: %s", user_id, exc.user_message)
            return
        self._failures[user_id] = failures
        wait = max(RETRY_S, retry_after_s(exc))
        self._not_before[user_id] = self._clock.now() + timedelta(seconds=wait)
        self._behind.add(user_id)
