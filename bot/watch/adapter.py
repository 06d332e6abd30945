"""`WatchChat` on Slack: the watch's alerts, and its lines on the run's card (a redraw).

Each alert carries message metadata naming it (its watch, signals and number), so an alert
whose post the bot never heard back about is found in the channel instead of posted twice.
"""

from __future__ import annotations

from typing import Any

from bot.deploy.adapter import SlackNotifier
from bot.slack import SlackGateway
from bot.watch.views import alert_message
from pipeline.kernel.config import Config
from store.deploy.models import Deployment
from store.watch import Watch, WatchAlert

# The metadata event of every watch alert; its payload's `key` is `alert_key(...)`.
ALERT_EVENT = "chatops_watch_alert"


def alert_key(alert: WatchAlert) -> str:
    """What tells one alert from every other: its watch (run and service) and its number."""
    return f"{alert.watch_id}#{alert.seq}"


def alert_metadata(alert: WatchAlert) -> dict[str, Any]:
    """The alert's message metadata: its key, and the watch, signals and number it names."""
    return {
        "event_type": ALERT_EVENT,
        "event_payload": {
            "key": alert_key(alert),
            "watch": alert.watch_id,
            "signals": ",".join(alert.signals),
            "number": alert.seq,
            "kind": alert.kind.value,
        },
    }


class SlackWatchChat:
    """Posts each alert once in the run's thread, broadcast to its channel."""

    def __init__(self, config: Config, notifier: SlackNotifier, slack: SlackGateway) -> None:
        self._config = config
        self._notifier = notifier
        self._slack = slack

    async def alert(
        self, run: Deployment, watch: Watch, alert: WatchAlert, *, rollback_id: str | None
    ) -> str | None:
        if run.channel_id is None:
            return None
        env = self._config.environment(run.environment)
        text, blocks = alert_message(
            run, watch, alert, approvers=env.approvers, rollback_id=rollback_id
        )
        # One message in the thread, also shown in the channel (`reply_broadcast`): the
        # thread keeps the story, the channel gets the ping. Without a card, in the channel.
        return await self._slack.post(
            "post the watch's alert",
            channel=run.channel_id,
            thread_ts=run.message_ts,
            text=text,
            blocks=blocks,
            broadcast=True,
            metadata=alert_metadata(alert),
        )

    async def find_alert(self, run: Deployment, watch: Watch, alert: WatchAlert) -> str | None:
        if run.channel_id is None:
            return None
        # A broadcast reply is in the channel's history too, so one search finds it either way.
        return await self._slack.find_message(
            "look for the watch's alert",
            channel=run.channel_id,
            event_type=ALERT_EVENT,
            key=alert_key(alert),
        )

    async def show(self, run: Deployment) -> None:
        await self._notifier.redraw(run)
