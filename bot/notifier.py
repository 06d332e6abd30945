"""Slack implementations of the pipeline's ports: the deploy-card Notifier, the user Directory."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from slack_sdk.web.async_client import AsyncWebClient

from bot.views import deploy_card, event_text, manual_steps, outcome_text, rollback_notice
from pipeline.config import Config
from store.models import Deployment, DeploymentState, StageEvent, TargetStatus

log = logging.getLogger(__name__)


class SlackNotifier:
    """Redraws the card with `chat.update` and threads stage details under it."""

    def __init__(self, client: AsyncWebClient, config: Config) -> None:
        self._client = client
        self._config = config
        self._drawn: dict[str, datetime] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def stage_changed(self, run: Deployment, event: StageEvent) -> None:
        if run.channel_id is None or run.message_ts is None:
            return
        await self._client.chat_postMessage(
            channel=run.channel_id, thread_ts=run.message_ts, text=event_text(event)
        )

    async def run_changed(self, run: Deployment) -> None:
        await self.redraw(run)
        if run.channel_id is None or run.message_ts is None:
            return
        if run.state in (DeploymentState.ROLLED_BACK, DeploymentState.ROLLBACK_FAILED):
            for t in run.active_targets:
                if t.status is TargetStatus.ROLLED_BACK:
                    await self._client.chat_postMessage(
                        channel=run.channel_id,
                        thread_ts=run.message_ts,
                        text=rollback_notice(run, t),
                    )
        if run.state.finished and run.state in (
            DeploymentState.SUCCEEDED,
            DeploymentState.ROLLED_BACK,
            DeploymentState.ROLLBACK_FAILED,
        ):
            text = outcome_text(run) or ""
            loud = run.state is DeploymentState.ROLLBACK_FAILED
            if loud:
                text = f"<!channel> {text}\n{manual_steps(run, self._config)}"
            await self._client.chat_postMessage(
                channel=run.channel_id, thread_ts=run.message_ts, text=text, reply_broadcast=loud
            )

    async def redraw(self, run: Deployment) -> None:
        """Draw `run` on its card, unless a newer copy of it has been drawn already.

        A click's redraw and the runner's own can race; without this, a card read before the
        run started could land last and show "starting…" for the whole rollout.
        """
        if run.channel_id is None or run.message_ts is None:
            return
        lock = self._locks.setdefault(run.id, asyncio.Lock())
        async with lock:
            drawn = self._drawn.get(run.id)
            if drawn is not None and run.updated_at < drawn:
                return
            confirm = self._config.environment(run.environment).confirm_buttons
            text, blocks = deploy_card(run, confirm=confirm)
            await self._client.chat_update(
                channel=run.channel_id, ts=run.message_ts, text=text, blocks=blocks
            )
            self._drawn[run.id] = run.updated_at


class SlackDirectory:
    """Resolves user groups with `usergroups.users.list`."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

    async def members_of(self, group_id: str) -> frozenset[str]:
        resp = await self._client.usergroups_users_list(usergroup=group_id)
        return frozenset(resp.get("users") or [])
