"""The deploy feature's Slack adapter: the `Notifier` port (the plan card and its thread).

Renders with `bot/deploy/views.py` and calls Slack through the one gateway (`bot/slack.py`).
Every card converges on its run in the store: one owned task per card draws the run's latest
state, remembers in the store what Slack accepted (`store.deploy.cards`), and retries a failed
update with backoff on the injected clock; the safety sweep (and start-up) compares every card
of an unfinished or recently finished run with its run and redraws the ones behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from bot.blocks import MAX_MESSAGE_TEXT, Blocks
from bot.deploy.thread import Progress, posts_alone
from bot.deploy.views import (
    break_glass_text,
    deploy_card,
    event_text,
    finished_text,
    manual_steps,
)
from bot.mrkdwn import mention, pack_lines, render
from bot.rollback.views import rollback_notice
from bot.slack import SlackGateway, answer_lost, retry_after_s, transient
from bot.watch.views import watch_lines
from pipeline.kernel.config import Config
from pipeline.kernel.errors import ChatOpsError, OutcomeUnknown, UpstreamError
from pipeline.kernel.ports import Clock
from pipeline.kernel.text import Line
from pipeline.leases import Firings
from pipeline.tasks import OwnedTasks
from pipeline.watch import source_of
from store.deploy.cards import CardViews
from store.deploy.models import Deployment, DeploymentState, StageEvent, TargetStatus
from store.deploy.repository import Deployments
from store.watch import Watches

log = logging.getLogger(__name__)

# The metadata every plan card carries, so the bot can find a card it posted but never recorded.
CARD_EVENT = "chatops_deploy_card"

# Cards of runs that finished this recently are still compared with their runs by the sweep.
RECENT = timedelta(hours=24)
# A failed card update is tried again after 2, 4, 8 ... seconds (at most a minute apart, or
# what a rate limit's Retry-After asks), up to RETRY_ATTEMPTS times; then the sweep takes over.
RETRY_FIRST_S = 2.0
RETRY_MAX_S = 60.0
RETRY_ATTEMPTS = 8

# Endings told to the channel too, mentioning the requester (issue 16).
_LOUD = (DeploymentState.ROLLED_BACK, DeploymentState.REJECTED, DeploymentState.CANCELLED)


def card_digest(text: str, blocks: Blocks) -> str:
    """What a card shows, as a short stable digest."""
    drawn = json.dumps([text, blocks], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(drawn.encode()).hexdigest()


class SlackNotifier:
    """Posts the card, keeps it in step with its run, and threads stage details under it."""

    def __init__(
        self,
        slack: SlackGateway,
        config: Config,
        *,
        deployments: Deployments,
        cards: CardViews,
        clock: Clock,
        tasks: OwnedTasks,
        watches: Watches | None = None,
    ) -> None:
        self._slack = slack
        self._watches = watches
        self._config = config
        self._deployments = deployments
        self._cards = cards
        self._clock = clock
        self._tasks = tasks
        self._behind: set[str] = set()
        self._progress: dict[str, Progress] = {}
        self._failed: dict[str, str | None] = {}
        self._listeners: list[Callable[[], None]] = []
        self._may_draw: Callable[[Deployment], Awaitable[bool]] | None = None
        self._owns: Callable[[str], bool] | None = None
        self._firings: Firings | None = None

    def speak_for(
        self,
        *,
        owns: Callable[[str], bool],
        may_draw: Callable[[Deployment], Awaitable[bool]],
        firings: Firings,
    ) -> None:
        """Replicas: a card is drawn only where `may_draw(run)` (its run's owner, or anyone
        while no replica owns it); `converge` redraws a card no replica here `owns` only after
        claiming that drawing across replicas, so the sweeps of several replicas draw it once."""
        self._owns = owns
        self._may_draw = may_draw
        self._firings = firings

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` whenever a run changes (each redraw of a card): the App Home
        follows the runs this way."""
        self._listeners.append(listener)

    async def _card(self, run: Deployment) -> tuple[str, Blocks]:
        env = self._config.environment(run.environment)
        reverters: dict[str, Deployment] = {}
        for rollback_id in {t.reverted_by for t in run.active_targets if t.reverted_by}:
            if (reverter := await self._deployments.get(rollback_id)) is not None:
                reverters[rollback_id] = reverter
        return deploy_card(
            run,
            confirm_buttons=env.confirm_buttons,
            reverters=reverters,
            canary_stages=len(env.canary.stages),
            now=self._clock.now(),
            approvers=env.approvers,
            watch=await self._watch_lines(run),
        )

    async def _watch_lines(self, run: Deployment) -> list[str]:
        if self._watches is None:
            return []
        watches = await self._watches.of_run(run.id)
        ecs_only = {
            w.service
            for w in watches
            if source_of(self._config, run, w.service).target_group is None
        }
        return watch_lines(watches, ecs_only=ecs_only)

    async def post_card(self, run: Deployment) -> str:
        """Post the card; raises OutcomeUnknown when Slack may have posted it unseen."""
        if run.channel_id is None:
            raise RuntimeError(f"Deployment {run.id} has no channel to post its card in.")
        text, blocks = await self._card(run)
        try:
            ts = await self._slack.post(
                "post the plan card here",
                channel=run.channel_id,
                text=text,
                blocks=blocks,
                metadata={"event_type": CARD_EVENT, "event_payload": {"key": run.id}},
            )
        except UpstreamError as exc:
            if answer_lost(exc):
                raise OutcomeUnknown(exc.line) from exc.__cause__
            raise
        await self._cards.record(
            run.id,
            digest=card_digest(text, blocks),
            drawn_version=run.updated_at,
            at=self._clock.now(),
        )
        return ts

    async def find_card(self, run: Deployment) -> str | None:
        """The ts of the card of `run` in its channel (by its metadata), or None."""
        if run.channel_id is None:
            return None
        return await self._slack.find_message(
            "look for the plan card", channel=run.channel_id, event_type=CARD_EVENT, key=run.id
        )

    async def card_link(self, run: Deployment) -> str | None:
        """The card's permalink (`chat.getPermalink`); None without a card, or when Slack
        cannot say (the message that carries it then says how else to find the run)."""
        if run.channel_id is None or run.message_ts is None:
            return None
        try:
            resp = await self._slack.call(
                "link the card",
                self._slack.client.chat_getPermalink(
                    channel=run.channel_id, message_ts=run.message_ts
                ),
            )
        except ChatOpsError:
            log.warning("no permalink for the card of %s", run.id, exc_info=True)
            return None
        link = resp.get("permalink")
        return str(link) if link else None

    async def tell(self, run: Deployment, message: Line) -> None:
        """Tell the requester privately, in the channel where they asked."""
        if run.channel_id is None:
            raise RuntimeError(f"Deployment {run.id} has no channel to answer in.")
        await self._slack.post_ephemeral(
            channel=run.channel_id, user=run.requested_by, text=render(message)
        )

    async def stage_changed(self, run: Deployment, event: StageEvent) -> None:
        """Post the event in the card's thread within the noise budget (`bot/deploy/thread.py`):
        a service's steps show on the card and are said in grouped progress replies."""
        if run.channel_id is None or run.message_ts is None:
            return
        progress = self._progress.get(run.id)
        if progress is None:
            # First seen here (a restart or another replica's run taken over): the services
            # already rolled out count, so the progress goes on from where the thread was.
            healthy = {t.service for t in run.active_targets if t.status is TargetStatus.HEALTHY}
            progress = Progress.going_on(len(run.active_targets), healthy=healthy - {event.service})
            self._progress[run.id] = progress
        if posts_alone(event):
            if event.status == "failed":
                if event.service is None and event.detail == self._failed.get(run.id):
                    return  # the run failed as the service did: said already
                self._failed[run.id] = event.detail
            await self._say_progress(run)
            await self.in_thread(run, event_text(event))
        elif progress.add(event):
            # The card shows each service's step; it moves with the progress replies.
            await self.redraw(run)
            await self._say_progress(run)

    async def _say_progress(self, run: Deployment) -> None:
        progress = self._progress.get(run.id)
        lines = progress.take() if progress is not None else []
        for part in pack_lines(lines, MAX_MESSAGE_TEXT):
            await self.in_thread(run, "\n".join(part))

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
        """Redraw the card; at the end, say how it ended in the thread. An ending someone must
        act on or know about (a failure, an automatic rollback, an abort, a rejection, a
        cancellation) also reaches the channel (`reply_broadcast`) and mentions the requester."""
        await self.redraw(run)
        if run.channel_id is None or run.message_ts is None:
            return
        await self._say_progress(run)
        if run.state.finished:
            self._progress.pop(run.id, None)
            self._failed.pop(run.id, None)
        back = [t for t in run.active_targets if t.status is TargetStatus.ROLLED_BACK]
        if run.is_rollback and run.state is DeploymentState.SUCCEEDED:
            # Seed 001's announcement, in the channel where the rollback was asked for.
            await self._slack.post(
                "announce the rollback",
                channel=run.channel_id,
                text=rollback_notice(run, run.active_targets),
            )
        if run.state in (DeploymentState.ROLLED_BACK, DeploymentState.ROLLBACK_FAILED) and back:
            await self.in_thread(run, rollback_notice(run, back))
        text = finished_text(run) if run.state.finished else ""
        if not text:
            return
        requester = mention(run.requested_by)
        if run.state is DeploymentState.ROLLBACK_FAILED:
            # Loud: the whole channel sees it, with every command still to run.
            steps = manual_steps(run, self._config)
            lines = [f"<!channel> {requester} {text}", *steps.splitlines()]
            for i, part in enumerate(pack_lines(lines, MAX_MESSAGE_TEXT)):
                await self.in_thread(run, "\n".join(part), broadcast=i == 0)
        elif run.state in _LOUD:
            await self.in_thread(run, f"{requester} {text}", broadcast=True)
        elif run.state is DeploymentState.EXPIRED:
            await self.in_thread(run, f"{requester} {text}")
        else:
            await self.in_thread(run, text)

    async def in_thread(
        self,
        run: Deployment,
        text: str,
        *,
        blocks: Blocks | None = None,
        broadcast: bool = False,
        doing: str = "post in the card's thread",
    ) -> None:
        """Post in the thread of `run`'s card (`broadcast`: also shown in the channel); in the
        channel itself when the run has no card."""
        assert run.channel_id is not None
        await self._slack.post(
            doing,
            channel=run.channel_id,
            thread_ts=run.message_ts,
            text=text,
            blocks=blocks,
            broadcast=broadcast,
        )

    async def redraw(self, run: Deployment) -> None:
        """Bring the card of `run` to its run's state in the store, in the background.

        Returns at once: the card's own task reads the run, updates the card unless it already
        shows it, and retries a failed update (see RETRY_*). A redraw asked for while that task
        runs makes it draw once more, so the card ends on the latest state whatever the order.
        """
        for listener in self._listeners:
            listener()
        if run.channel_id is None or run.message_ts is None:
            return
        self._behind.add(run.id)
        self._tasks.spawn(f"card:{run.id}", self._converge(run.id))

    async def converge(self) -> int:
        """Redraw every card of an unfinished or recently finished run that shows something
        else than its run (the sweep, and start-up). Returns how many were behind."""
        behind = 0
        since = self._clock.now() - RECENT
        for deployment_id in await self._cards.to_check(finished_since=since):
            run = await self._deployments.get(deployment_id)
            if run is None:
                continue
            try:
                drawing = card_digest(*await self._card(run))
            except ChatOpsError as exc:
                # An environment taken out of the config: that card cannot be drawn any more.
                log.warning("cannot draw the card of %s: %s", run.id, exc.user_message)
                continue
            shown = await self._cards.shown(run.id)
            if shown is None or shown.digest != drawing:
                behind += 1
                if (
                    self._firings is not None
                    and self._owns is not None
                    and not self._owns(run.id)
                    and not await self._firings.claim(f"card:{run.id}", drawing)
                ):
                    continue  # another replica's sweep draws it
                await self.redraw(run)
        return behind

    async def _converge(self, deployment_id: str) -> None:
        delay = RETRY_FIRST_S
        failures = 0
        while deployment_id in self._behind:
            self._behind.discard(deployment_id)
            run = await self._deployments.get(deployment_id)
            if run is None:
                return
            if self._may_draw is not None and not await self._may_draw(run):
                return  # its owner, another replica, draws it
            try:
                await self._draw(run)
            except ChatOpsError as exc:
                if not transient(exc):
                    log.warning("could not update the card of %s: %s", run.id, exc.user_message)
                    # Not worth retrying this drawing; a newer one asked for meanwhile (the
                    # run moved on while Slack answered) is still tried, or it would be lost.
                    continue
                failures += 1
                if failures > RETRY_ATTEMPTS:
                    log.warning(
                        "gave up updating the card of %s for now (%s); the sweep tries again",
                        run.id,
                        exc.user_message,
                    )
                    return
                wait = max(delay, retry_after_s(exc))
                if failures == 1:
                    log.warning(
                        "could not update the card of %s (%s); trying again in %gs",
                        run.id,
                        exc.user_message,
                        wait,
                    )
                self._behind.add(deployment_id)
                await self._clock.sleep(wait)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            if failures:
                log.info("the card of %s caught up after %d failed update(s)", run.id, failures)
                failures, delay = 0, RETRY_FIRST_S

    async def _draw(self, run: Deployment) -> None:
        """Update the card unless the store says it already shows this drawing."""
        if run.channel_id is None or run.message_ts is None:
            return
        text, blocks = await self._card(run)
        digest = card_digest(text, blocks)
        shown = await self._cards.shown(run.id)
        if shown is not None and shown.digest == digest:
            return
        await self._slack.update(
            "update the plan card",
            channel=run.channel_id,
            ts=run.message_ts,
            text=text,
            blocks=blocks,
        )
        await self._cards.record(
            run.id, digest=digest, drawn_version=run.updated_at, at=self._clock.now()
        )
