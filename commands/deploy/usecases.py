"""`/deploy` and its Approve/Reject buttons: post the card, approvals, expiry, records.

No Slack types here: `bot/` turns payloads into `Invocation`/`Click`, and renders what these
handlers return. The sequencing of a request (plan and record it, through `planning.py`; post
the card, cancel when it cannot be posted, start when no approval is needed, expire when nobody
decides) lives here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from commands.access import Access
from commands.deploy.cards import CardPoster, Shown
from commands.deploy.parse import (
    DeployCommand,
    DeployRequest,
    Help,
    HistoryRequest,
    StatusRequest,
    usage,
)
from commands.deploy.planning import DeployPlanner, DryRun, new_deployment_id
from commands.exchange import Answer, Click, Invocation, Later, Outcome
from pipeline.kernel.config import Config
from pipeline.kernel.errors import (
    ChatOpsError,
    DeployConflict,
    Forbidden,
    NotFound,
    UpstreamError,
)
from pipeline.kernel.ports import Clock, Notifier, Timers
from pipeline.kernel.text import Line, People, line
from pipeline.runner import Runner
from store.deploy.models import (
    Decision,
    Deployment,
    DeploymentId,
    DeploymentState,
)
from store.deploy.repository import Deployments

log = logging.getLogger(__name__)

HISTORY_LIMIT = 10
# A request needing no approval whose card a crash left unposted is still started when the bot
# is back within this long of the request; after that, it is cancelled and the requester told.
UNAPPROVED_START_WINDOW = timedelta(minutes=15)


@dataclass(frozen=True)
class Record:
    """Reply: the deployment record of one run, as of `now`."""

    run: Deployment
    now: datetime
    window_minutes: float


@dataclass(frozen=True)
class History:
    """Reply: the latest runs, in one environment or all, and the rollbacks that reverted any."""

    runs: tuple[Deployment, ...]
    environment: str | None
    reverters: Mapping[str, Deployment] = field(default_factory=dict)


def approval_timer(deployment_id: str) -> str:
    return f"approval:{deployment_id}"


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


class DeployCommands:
    """What `/deploy` and its buttons do. Reads ECS through the planner, Slack through ports."""

    def __init__(
        self,
        *,
        config: Config,
        deployments: Deployments,
        planner: DeployPlanner,
        poster: CardPoster,
        runner: Runner,
        access: Access,
        notifier: Notifier,
        timers: Timers,
        clock: Clock,
    ) -> None:
        self._config = config
        self._deployments = deployments
        self._planner = planner
        self._runner = runner
        self._access = access
        self._notifier = notifier
        self._timers = timers
        self._clock = clock
        self._poster = poster

    # -- /deploy ---------------------------------------------------------------------------

    async def answer(self, parsed: DeployCommand, inv: Invocation) -> Answer:
        """Answer a parsed `/deploy` request about deploys: help, status, history, a deploy."""
        if isinstance(parsed, Help):
            return Outcome(reply=usage(self._config), audit="help")
        if isinstance(parsed, StatusRequest):
            run = await self.get(parsed.deployment_id)
            window_s = self._config.environment(run.environment).rollback_window_s
            return Outcome(reply=Record(run, self._clock.now(), window_s / 60), ref=run.id)
        if isinstance(parsed, HistoryRequest):
            runs = await self.history(parsed.environment)
            reverters: dict[str, Deployment] = {}
            for run in runs:
                if run.reverted_by is not None:
                    reverters[run.reverted_by] = await self.get(run.reverted_by)
            return Outcome(reply=History(tuple(runs), parsed.environment, reverters))
        if not isinstance(parsed, DeployRequest):
            raise RuntimeError(f"{type(parsed).__name__} is answered by the gates' commands.")
        request = parsed
        # The id is chosen before the ack, so a request cut short by a crash can be told
        # apart from one that got as far as its record.
        deployment_id = new_deployment_id(self._clock.now())

        async def then() -> Outcome:
            return await self.request(
                request,
                user_id=inv.user_id,
                channel_id=inv.channel_id,
                deployment_id=deployment_id,
            )

        return Later(then, ref=deployment_id)

    async def request(
        self,
        request: DeployRequest,
        *,
        user_id: str,
        channel_id: str,
        deployment_id: DeploymentId | None = None,
    ) -> Outcome:
        """Plan, check, record and publish a deploy (or, with `--dry-run`, only say what it
        would do). Touches AWS (reads only) and Slack (the card)."""
        deployment_id = deployment_id or new_deployment_id(self._clock.now())
        with self._poster.posting(deployment_id):
            planned = await self._planner.plan(
                request, user_id=user_id, channel_id=channel_id, deployment_id=deployment_id
            )
            if isinstance(planned, DryRun):
                return Outcome(reply=planned, audit="dry run: nothing changed")
            outcome = await self.publish(planned)
        if planned.break_glass and outcome.error is None:
            await self._notifier.break_glass(await self.get(planned.id))
            return Outcome(
                reply=outcome.reply,
                cards=outcome.cards,
                audit=f"{outcome.audit} (break-glass: {planned.break_glass})",
                ref=outcome.ref,
            )
        return outcome

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
        if run.approval_due_at is not None:
            self._timers.arm(approval_timer(run.id), run.approval_due_at)
        if run.required_approvals > 0:
            return Outcome(reply=note, audit="planned", ref=run.id)
        try:
            started = await self._start_unapproved(run.id)
        except DeployConflict as exc:
            return Outcome(error=exc, cards=(await self.get(run.id),), ref=run.id)
        return Outcome(reply=note, cards=(started,), audit="started", ref=run.id)

    async def cancel(self, deployment_id: str, *, reason: str) -> bool:
        """Cancel a run that has not started. Returns False when it had already moved on."""
        now = self._clock.now()
        cancelled = await self._deployments.transition(
            deployment_id,
            from_states=[DeploymentState.AWAITING_APPROVAL],
            to=DeploymentState.CANCELLED,
            at=now,
            finished_at=now,
            error=reason,
        )
        if cancelled:
            self._timers.disarm(approval_timer(deployment_id))
        return cancelled

    async def _start_unapproved(self, deployment_id: str) -> Deployment:
        """Start a run needing no approvals. Raises DeployConflict (and cancels the run) when
        another run holds one of its services."""
        run = await self.get(deployment_id)
        conflict = await self._deployments.start_unapproved(run.id, at=self._clock.now())
        if conflict is not None:
            await self.cancel(run.id, reason=f"deployment {conflict} holds a service")
            raise DeployConflict(run.environment, [t.service for t in run.active_targets], conflict)
        self._runner.submit(run.id)
        return await self.get(deployment_id)

    # -- Approve / Reject ------------------------------------------------------------------

    async def on_approve(self, click: Click) -> Outcome:
        return await self.decide(click, Decision.APPROVE)

    async def on_reject(self, click: Click) -> Outcome:
        return await self.decide(click, Decision.REJECT)

    async def decide(self, click: Click, decision: Decision) -> Outcome:
        """Record an Approve/Reject click and redraw the card.

        A refused click (not an approver, own request, twice, too late) changes nothing and
        its outcome says why; a card whose run has ended is redrawn so its buttons go away.
        """
        run = await self._adopt_card(await self.get(click.value), click)
        try:
            after = await self._decide(run, user_id=click.user_id, decision=decision)
        except (Forbidden, DeployConflict) as exc:
            latest = await self.get(run.id)
            return Outcome(error=exc, cards=(latest,) if latest.state.finished else (), ref=run.id)
        # Re-read: once started, the runner may already have moved the run on.
        latest = await self.get(run.id)
        return Outcome(cards=(latest,), audit=after.state.value, ref=run.id)

    async def _adopt_card(self, run: Deployment, click: Click) -> Deployment:
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

    async def _decide(self, run: Deployment, *, user_id: str, decision: Decision) -> Deployment:
        env = self._config.environment(run.environment)
        if (
            run.state is DeploymentState.AWAITING_APPROVAL
            and run.approval_due_at is not None
            and run.approval_due_at <= self._clock.now()
        ):
            # The timer may not have fired yet; the window must hold at the click too.
            await self.expire(run.id)
            run = await self.get(run.id)
        if run.state is not DeploymentState.AWAITING_APPROVAL:
            raise Forbidden(
                "Deployment `{id}` is already {state}; your click changed nothing.",
                id=run.id,
                state=_state_words(run.state),
            )
        if not await self._access.is_member(user_id, env.approvers):
            raise Forbidden(
                "Only approvers of `{env}` can approve or reject: {who}. Your click changed "
                "nothing.",
                env=env.name,
                who=People.of(env.approvers),
            )
        if decision is Decision.APPROVE and user_id == run.requested_by:
            raise Forbidden(
                "You requested this deployment, so you cannot approve it. Ask another approver."
            )
        result = await self._deployments.record_decision(
            run.id, user_id=user_id, decision=decision, at=self._clock.now()
        )
        if result.conflict_with is not None:
            raise DeployConflict(
                run.environment, [t.service for t in run.active_targets], result.conflict_with
            )
        if not result.counted:
            if result.deployment.state is not DeploymentState.AWAITING_APPROVAL:
                raise Forbidden(
                    "Deployment `{id}` is already {state}; your click changed nothing.",
                    id=run.id,
                    state=_state_words(result.deployment.state),
                )
            raise Forbidden("You already decided on this deployment; each approver counts once.")
        if result.deployment.state is not DeploymentState.AWAITING_APPROVAL:
            self._timers.disarm(approval_timer(run.id))
        if result.started:
            self._runner.submit(run.id)
        return result.deployment

    # -- due work --------------------------------------------------------------------------

    async def expire(self, deployment_id: str) -> bool:
        """Expire a request whose approval window has passed, and redraw its card.

        Returns False (changing nothing) when it is not due or already decided.
        """
        run = await self._deployments.get(deployment_id)
        now = self._clock.now()
        if run is None or run.approval_due_at is None or run.approval_due_at > now:
            return False
        expired = await self._deployments.transition(
            deployment_id,
            from_states=[DeploymentState.AWAITING_APPROVAL],
            to=DeploymentState.EXPIRED,
            at=now,
            finished_at=now,
            error="no decision within the approval window",
        )
        if expired:
            self._timers.disarm(approval_timer(deployment_id))
            await self._notifier.redraw(await self.get(deployment_id))
        return expired

    async def expire_due(self) -> list[str]:
        """Expire every request whose window has passed (the safety sweep). Returns their ids."""
        done: list[str] = []
        for run in await self._deployments.in_states([DeploymentState.AWAITING_APPROVAL]):
            if await self.expire(run.id):
                done.append(run.id)
        return done

    async def recover_orphans(self) -> list[str]:
        """Requests awaiting approval without a card, left by a process that died while posting
        it (start-up and the safety sweep): find the card in the channel or post it, then go on
        as the request would have; or cancel (expire, when the approval window has passed) and
        tell the requester. A request whose channel cannot be read is left for the next sweep.
        Returns the ids dealt with."""
        done: list[str] = []
        for run in await self._deployments.in_states([DeploymentState.AWAITING_APPROVAL]):
            if run.message_ts is not None or self._poster.is_posting(run.id):
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
            await self._start_unapproved(run.id)
        except DeployConflict as exc:
            await self._notifier.redraw(await self.get(run.id))
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
            await self._notifier.redraw(await self.get(run.id))
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

    async def arm_timers(self) -> int:
        """Arm a timer for every request awaiting approval (at start-up). Returns how many."""
        runs = await self._deployments.in_states([DeploymentState.AWAITING_APPROVAL])
        armed = 0
        for run in runs:
            if run.approval_due_at is not None:
                self._timers.arm(approval_timer(run.id), run.approval_due_at)
                armed += 1
        return armed

    async def redraw(self, run: Deployment) -> None:
        """Draw `run` on its card (no-op without a card)."""
        await self._notifier.redraw(run)

    # -- records ---------------------------------------------------------------------------

    async def get(self, deployment_id: str) -> Deployment:
        run = await self._deployments.get(deployment_id)
        if run is None:
            raise NotFound(
                "No deployment has the id `{id}`. `/deploy history` lists recent ones.",
                id=deployment_id,
            )
        return run

    async def history(self, environment: str | None) -> list[Deployment]:
        return await self._deployments.list_recent(environment=environment, limit=HISTORY_LIMIT)


def _state_words(state: DeploymentState) -> str:
    return state.value.replace("_", " ")
