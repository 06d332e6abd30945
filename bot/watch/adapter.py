"""`WatchChat` on Slack: the watch's alerts, and its lines on the run's card (a redraw)."""

from __future__ import annotations

from bot.deploy.adapter import SlackNotifier
from bot.watch.views import alert_message
from pipeline.kernel.config import Config
from store.deploy.models import Deployment
from store.watch import Watch, WatchAlert


class SlackWatchChat:
    """Posts each alert once in the run's thread, broadcast to its channel."""

    def __init__(self, config: Config, notifier: SlackNotifier) -> None:
        self._config = config
        self._notifier = notifier

    async def alert(
        self, run: Deployment, watch: Watch, alert: WatchAlert, *, rollback_id: str | None
    ) -> None:
        if run.channel_id is None:
            return
        env = self._config.environment(run.environment)
        text, blocks = alert_message(
            run, watch, alert, approvers=env.approvers, rollback_id=rollback_id
        )
        # One message in the thread, also shown in the channel (`reply_broadcast`): the
        # thread keeps the story, the channel gets the ping.
        await self._notifier.in_thread(
            run, text, blocks=blocks, broadcast=True, doing="post the watch's alert"
        )

    async def show(self, run: Deployment) -> None:
        await self._notifier.redraw(run)
