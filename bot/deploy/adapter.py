"""The deploy feature's Slack adapter: the `Notifier` port (the plan card and its thread).

Renders with `bot/deploy/views.py` and calls Slack through the one gateway (`bot/slack.py`).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from bot.blocks import MAX_MESSAGE_TEXT, Blocks
from bot.deploy.views import (
    break_glass_text,
    deploy_card,
    event_text,
    manual_steps,
    outcome_text,
)
from bot.mrkdwn import pack_lines
from bot.rollback.views import rollback_notice
from bot.slack import SlackGateway
from pipeline.kernel.config import Config
from store.deploy.models import Deployment, DeploymentState, StageEvent, TargetStatus
from store.deploy.repository import Deployments

log = logging.getLogger(__name__)

# The metadata every plan card carries, so the bot can find a card it posted but never recorded.
CARD_EVENT = "chatops_deploy_card"

_ENDED = (DeploymentState.SUCCEEDED, DeploymentState.ROLLED_BACK, DeploymentState.ROLLBACK_FAILED)


class SlackNotifier:
    """Posts the card, redraws it with `chat.update`, and threads stage details under it."""

    def __init__(self, slack: SlackGateway, config: Config, deployments: Deployments) -> None:
        self._slack = slack
        self._config = config
        self._deployments = deployments
        self._drawn: dict[str, datetime] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def _card(self, run: Deployment) -> tuple[str, Blocks]:
        env = self._config.environment(run.environment)
        reverter = (
            await self._deployments.get(run.reverted_by) if run.reverted_by is not None else None
        )
        return deploy_card(
            run,
            confirm_buttons=env.confirm_buttons,
            reverter=reverter,
            canary_stages=len(env.canary.stages),
        )

    async def post_card(self, run: Deployment) -> str:
        if run.channel_id is None:
            raise RuntimeError(f"Deployment {run.id} has no channel to post its card in.")
        text, blocks = await self._card(run)
        return await self._slack.post(
            "post the plan card here",
            channel=run.channel_id,
            text=text,
            blocks=blocks,
            metadata={"event_type": CARD_EVENT, "event_payload": {"key": run.id}},
        )

    async def stage_changed(self, run: Deployment, event: StageEvent) -> None:
        if run.channel_id is None or run.message_ts is None:
            return
        await self._slack.post(
            "post a stage in the card's thread",
            channel=run.channel_id,
            thread_ts=run.message_ts,
            text=event_text(event),
        )

    async def break_glass(self, run: Deployment) -> None:
        if run.channel_id is None or run.break_glass is None:
            return
        await self._slack.post(
            "announce the break-glass deploy",
            channel=run.channel_id,
            text=break_glass_text(run),
            thread_ts=None,
        )

    async def run_changed(self, run: Deployment) -> None:
        await self.redraw(run)
        if run.channel_id is None or run.message_ts is None:
            return
        if run.is_rollback and run.state is DeploymentState.SUCCEEDED:
            # Seed 001's announcement, in the channel where the rollback was asked for.
            notices = [rollback_notice(run, t) for t in run.active_targets]
            for part in pack_lines(notices, MAX_MESSAGE_TEXT):
                await self._slack.post(
                    "announce the rollback", channel=run.channel_id, text="\n\n".join(part)
                )
        if run.state in (DeploymentState.ROLLED_BACK, DeploymentState.ROLLBACK_FAILED):
            for t in run.active_targets:
                if t.status is TargetStatus.ROLLED_BACK:
                    await self._thread(run, rollback_notice(run, t))
        if run.state in _ENDED:
            text = outcome_text(run) or ""
            if run.state is DeploymentState.ROLLBACK_FAILED:
                # Loud: the whole channel sees it, with every command still to run.
                steps = manual_steps(run, self._config)
                for i, part in enumerate(
                    pack_lines([f"<!channel> {text}", *steps.splitlines()], MAX_MESSAGE_TEXT)
                ):
                    await self._thread(run, "\n".join(part), broadcast=i == 0)
            else:
                await self._thread(run, text)

    async def _thread(self, run: Deployment, text: str, *, broadcast: bool = False) -> None:
        assert run.channel_id is not None
        assert run.message_ts is not None
        await self._slack.post(
            "post in the card's thread",
            channel=run.channel_id,
            thread_ts=run.message_ts,
            text=text,
            broadcast=broadcast,
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
            text, blocks = await self._card(run)
            await self._slack.update(
                "update the plan card",
                channel=run.channel_id,
                ts=run.message_ts,
                text=text,
                blocks=blocks,
            )
            self._drawn[run.id] = run.updated_at
