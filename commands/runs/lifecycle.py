"""`Runs`: the life of a run, whichever feature asked for it.

A recorded request is published (its card posted, its approval timer armed, started at once
when it needs no approval) or cancelled when its card cannot be posted. It leaves
AWAITING_APPROVAL without a decision by starting at once, by being cancelled, or by expiring
when its approval window passes (a timer per request, re-armed at start-up, and the safety
sweep). A request whose card the bot died while posting is picked up at start-up and by the
sweep: its card is found or posted, or it is ended and the requester told. No Slack types
here: Slack is reached through the `Notifier` port.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from commands.exchange import Click, Outcome
from commands.runs.cards import CardPoster, Shown
from pipeline.kernel.errors import ChatOpsError, DeployConflict, NotFound, UpstreamError
from pipeline.kernel.ports import Clock, Notifier, TimerKind, Timers
from pipeline.kernel.text import Line, line
from pipeline.runner import Runner
from pipeline.steps import error_fields, stage_event
from store.deploy.models import Deployment, DeploymentState
from store.deploy.repository import Deployments

log = logging.getLogger(__name__)

# A request needing no approval whose card a crash left unposted is still started when the bot
# is back within this long of the request; after that, it is cancelled and the requester told.
UNAPPROVED_START_WINDOW = timedelta(minutes=15)


approval_timer = TimerKind.APPROVAL.key


class Runs:
    """Looks up, publishes, starts, cancels, expires, recovers and redraws runs. Reads and
    writes the store; reaches Slack only through the notifier (and its card poster), never
    AWS."""

    def __init__(
        self,
        *,
        deployments: Deployments,
        runner: Runner,
        notifier: Notifier,
        timers: Timers,
        clock: Clock,
    ) -> None:
        self._deployments = deployments
        self._runner = runner
        self._notifier = notifier
        self._timers = timers
        self._clock = clock
        self._poster = CardPoster(notifier=notifier, clock=clock)

    async def get(self, deployment_id: str) -> Deployment:
        """The recorded run `deployment_id`; raises NotFound when there is none."""
        run = await self._deployments.get(deployment_id)
        if run is None:
            raise NotFound(
                "No deployment has the id `{id}`. `/deploy history` lists recent ones.",
                id=deployment_id,
            )
        return run

    async def redraw(self, deployment_id: str) -> None:
        """Draw the run's latest state on its card (no-op without a card)."""
        await self._notifier.redraw(await self.get(deployment_id))

    async def said(self, run: Deployment, stage: str, status: str, detail: Line) -> None:
        """Record what a person did to a run (the detail names them) and say it in the card's
        thread. A thread Slack refuses is logged: the store holds the truth."""
        event = stage_event(run, stage, status, detail, at=self._clock.now())
        await self._deployments.record_event(event)
        try:
            await self._notifier.stage_changed(run, event)
        except ChatOpsError as exc:
            log.warning("could not tell the thread of %s: %s", run.id, exc)

    async def ended(self, deployment_id: str) -> None:
        """A person ended the run (rejected, cancelled) or its time ran out: redraw its card and
        say how it ended (`Notifier.run_changed`). A Slack failure is logged, never raised: the
        store already holds the end."""
        run = await self.get(deployment_id)
        try:
            await self._notifier.run_changed(run)
        except ChatOpsError as exc:
            log.warning("could not tell how %s ended: %s", run.id, exc.user_message)

    # -- the approval timer ----------------------------------------------------------------

    def arm_timer(self, run: Deployment) -> None:
        """Arm the expiry of a request at its `approval_due_at` (none: nothing is due)."""
        if run.approval_due_at is not None:
            self._timers.arm(approval_timer(run.id), run.approval_due_at)

    def disarm_timer(self, deployment_id: str) -> None:
        """The request was answered: it no longer expires."""
        self._timers.disarm(approval_timer(deployment_id))

    async def arm_timers(self) -> int:
        """Arm a timer for every request awaiting approval (at start-up). Returns how many."""
        runs = await self._deployments.in_states([DeploymentState.AWAITING_APPROVAL])
        armed = [run for run in runs if run.approval_due_at is not None]
        for run in armed:
            self.arm_timer(run)
        return len(armed)

    # -- publishing a recorded request -----------------------------------------------------

    @contextmanager
    def posting(self, run_id: str) -> Iterator[None]:
        """While inside, this process is getting `run_id` a card: the sweep does not take it
        for an orphan, and a click on an unknown card does not adopt it."""
        with self._poster.posting(run_id):
            yield

    async def publish(self, run: Deployment) -> Outcome:
        """Post a recorded run's card and arm its approval timer; start it at once when it
        needs no approval.

        A post Slack did not confirm is looked for in the channel before it is posted again
        (see `CardPoster`). When there is no card in the end the run is cancelled and the
        outcome says why; when Slack was slow but the card is there, the outcome says so. When
        another run holds one of its services, it is cancelled too.
        """
        with self._poster.posting(run.id):
            shown = await self._poster.show(run)
            if shown.ts is None:
                await self.cancel(run.id, reason="the plan card could not be posted")
                return Outcome(error=_not_posted(run, shown), ref=run.id)
            await self._deployments.set_fields(
                run.id, at=self._clock.now(), channel_id=run.channel_id, message_ts=shown.ts
            )
        note = (
            line(
                "Slack was slow to confirm the plan card of `{id}`, but the card is in this "
                "channel.",
                id=run.id,
            )
            if shown.slow
            else None
        )
        self.arm_timer(run)
        if run.required_approvals > 0:
            return Outcome(reply=note, audit="planned", ref=run.id)
        try:
            started = await self.start_unapproved(run.id)
        except DeployConflict as exc:
            return Outcome(error=exc, cards=(await self.get(run.id),), ref=run.id)
        return Outcome(reply=note, cards=(started,), audit="started", ref=run.id)

    async def adopt_card(self, run: Deployment, click: Click) -> Deployment:
        """A click on a card the run does not know (posted unseen) makes it the run's card."""
        if (
            run.message_ts is not None
            or click.message_ts is None
            or click.channel_id != run.channel_id
            or self._poster.is_posting(run.id)
        ):
            return run
        await self._deployments.set_fields(
            run.id, at=self._clock.now(), message_ts=click.message_ts
        )
        return await self.get(run.id)

    # -- leaving AWAITING_APPROVAL without a decision --------------------------------------

    async def cancel(self, deployment_id: str, *, reason: str | Line) -> bool:
        """Cancel a run that has not started. Returns False when it had already moved on."""
        return await self._end_request(deployment_id, DeploymentState.CANCELLED, reason)

    async def start_unapproved(self, deployment_id: str) -> Deployment:
        """Start a run needing no approvals. Raises DeployConflict (and cancels the run) when
        another run holds one of its services."""
        run = await self.get(deployment_id)
        conflict = await self._deployments.start_unapproved(run.id, at=self._clock.now())
        if conflict is not None:
            await self.cancel(run.id, reason=f"deployment {conflict} holds a service")
            raise DeployConflict(run.environment, [t.service for t in run.active_targets], conflict)
        self._runner.submit(run.id)
        return await self.get(deployment_id)

    async def expire(self, deployment_id: str) -> bool:
        """Expire a request whose approval window has passed, and redraw its card.

        Returns False (changing nothing) when it is not due or already decided.
        """
        run = await self._deployments.get(deployment_id)
        now = self._clock.now()
        if run is None or run.approval_due_at is None or run.approval_due_at > now:
            return False
        expired = await self._end_request(
            deployment_id, DeploymentState.EXPIRED, "no decision within the approval window"
        )
        if expired:
            await self.ended(deployment_id)
        return expired

    async def _end_request(
        self, deployment_id: str, to: DeploymentState, reason: str | Line
    ) -> bool:
        """Move a request still awaiting approval to `to` and disarm its approval timer; False
        when it had already moved on."""
        now = self._clock.now()
        ended = await self._deployments.transition(
            deployment_id,
            from_states=[DeploymentState.AWAITING_APPROVAL],
            to=to,
            at=now,
            finished_at=now,
            **error_fields(reason),
        )
        if ended:
            self.disarm_timer(deployment_id)
        return ended

    async def expire_due(self) -> list[str]:
        """Expire every request whose window has passed (the safety sweep). Returns their ids."""
        done: list[str] = []
        for run in await self._deployments.in_states([DeploymentState.AWAITING_APPROVAL]):
            if await self.expire(run.id):
                done.append(run.id)
        return done

    # -- requests a crash left without a card ----------------------------------------------

    async def recover_orphans(
        self, *, elsewhere: Callable[[str], Awaitable[bool]] | None = None
    ) -> list[str]:
        """Requests awaiting approval without a card, left by a process that died while posting
        it (start-up and the safety sweep): find the card in the channel or post it, then go on
        as the request would have; or cancel (expire, when the approval window has passed) and
        tell the requester. A request whose channel cannot be read is left for the next sweep.
        Returns the ids dealt with. `elsewhere(id)`: the request is still being handled by
        another live replica (it is posting the card), so it is no orphan."""
        done: list[str] = []
        for run in await self._deployments.in_states([DeploymentState.AWAITING_APPROVAL]):
            if run.message_ts is not None or self._poster.is_posting(run.id):
                continue
            if elsewhere is not None and await elsewhere(run.id):
                continue
            with self._poster.posting(run.id):
                try:
                    await self._recover(run)
                    done.append(run.id)
                except ChatOpsError as exc:
                    log.warning(
                        "could not recover the request %s yet: %s", run.id, exc.user_message
                    )
        return done

    async def _recover(self, run: Deployment) -> None:
        now = self._clock.now()
        expired = run.approval_due_at is not None and run.approval_due_at <= now
        too_late = run.required_approvals == 0 and now - run.created_at > UNAPPROVED_START_WINDOW
        if expired or too_late:
            await self._close_orphan(run, expired=expired)
            return
        shown = await self._poster.show(run, look_first=True)
        if shown.ts is None:
            await self.cancel(run.id, reason="the plan card could not be posted after a restart")
            why = shown.error.line if shown.error is not None else line("no answer from Slack")
            await self._tell(
                run,
                line(
                    "The bot restarted while posting the plan card of `{id}` and could not "
                    "post it now, so I cancelled it. Nothing was deployed; send the command "
                    "again.",
                    id=run.id,
                ).then(why.template, **why.slots),
            )
            return
        await self._deployments.set_fields(run.id, at=self._clock.now(), message_ts=shown.ts)
        run = await self.get(run.id)
        await self._notifier.redraw(run)
        if run.required_approvals > 0:
            await self._tell(
                run,
                line(
                    "The bot restarted while posting the plan card of `{id}`; the card is in "
                    "the channel now and awaits approval.",
                    id=run.id,
                ),
            )
            return
        try:
            await self.start_unapproved(run.id)
        except DeployConflict as exc:
            await self.redraw(run.id)
            await self._tell(run, exc.line.then("Nothing was deployed."))
            return
        await self._tell(
            run,
            line(
                "The bot restarted while posting the plan card of `{id}`; the card is in the "
                "channel now and the deploy has started.",
                id=run.id,
            ),
        )

    async def _close_orphan(self, run: Deployment, *, expired: bool) -> None:
        """End a request without a card whose time has passed while the bot was down."""
        try:
            ts = await self._notifier.find_card(run)
        except ChatOpsError:
            ts = None  # it ends either way; a card found later is fixed by its first click
        if ts is not None:
            await self._deployments.set_fields(run.id, at=self._clock.now(), message_ts=ts)
        if expired:
            await self.expire(run.id)
            said = line(
                "The bot was down while deployment `{id}` awaited approval, and its approval "
                "window has passed, so it expired. Nothing was deployed; send the command "
                "again if it is still wanted.",
                id=run.id,
            )
        else:
            await self.cancel(run.id, reason="the bot was down when it should have started")
            await self.redraw(run.id)
            said = line(
                "The bot was down when deployment `{id}` should have started, and more than "
                "{minutes} minutes have passed since you asked, so I cancelled it. Nothing was "
                "deployed; send the command again if it is still wanted.",
                id=run.id,
                minutes=int(UNAPPROVED_START_WINDOW.total_seconds() // 60),
            )
        await self._tell(run, said)

    async def _tell(self, run: Deployment, message: Line) -> None:
        try:
            await self._notifier.tell(run, message)
        except ChatOpsError as exc:
            log.warning("could not tell %s about %s: %s", run.requested_by, run.id, exc)


def _not_posted(run: Deployment, shown: Shown) -> UpstreamError:
    """Why a request was cancelled for want of a card, in the requester's words."""
    assert shown.error is not None
    nothing = "Nothing was rolled back." if run.is_rollback else "Nothing was deployed."
    if shown.slow:
        # Slack gave no clear answer, and the card is not in the channel either.
        error = UpstreamError(
            shown.error.line.then(
                "The card is not in this channel either, so I cancelled {what} `{id}`. " + nothing,
                what="rollback" if run.is_rollback else "deployment",
                id=run.id,
            )
        )
    else:
        error = UpstreamError(shown.error.line.then(nothing))
    error.__cause__ = shown.error.__cause__
    return error
