"""`/deploy` and its Approve/Reject buttons: the request, its card, the decisions, records.

No Slack types here: `bot/` turns payloads into `Invocation`/`Click`, and renders what these
handlers return. The sequencing of a request lives here: plan and record it (`planning.py`),
post the card, cancel when it cannot be posted, start when no approval is needed. What becomes
of a request nobody decides on (expiry, recovery after a crash) is in `pending_requests.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

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
from commands.deploy.pending_requests import PendingRequests, approval_timer
from commands.deploy.planning import DeployPlanner, DryRun, new_deployment_id
from commands.exchange import Answer, Click, Invocation, Later, Outcome
from pipeline.kernel.config import Config
from pipeline.kernel.errors import (
    DeployConflict,
    Forbidden,
    UpstreamError,
)
from pipeline.kernel.ports import Clock, Notifier, Timers
from pipeline.kernel.text import People, line
from pipeline.runner import Runner
from store.deploy.models import (
    Decision,
    Deployment,
    DeploymentId,
    DeploymentState,
)
from store.deploy.repository import Deployments

HISTORY_LIMIT = 10


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
        pending: PendingRequests,
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
        self._pending = pending
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
                await self._pending.cancel(run.id, reason="the plan card could not be posted")
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
            started = await self._pending.start_unapproved(run.id)
        except DeployConflict as exc:
            return Outcome(error=exc, cards=(await self.get(run.id),), ref=run.id)
        return Outcome(reply=note, cards=(started,), audit="started", ref=run.id)

    async def cancel(self, deployment_id: str, *, reason: str) -> bool:
        """Cancel a run that has not started. Returns False when it had already moved on."""
        return await self._pending.cancel(deployment_id, reason=reason)

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
            await self._pending.expire(run.id)
            run = await self.get(run.id)
        if run.state is not DeploymentState.AWAITING_APPROVAL:
            raise Forbidden(
                "Deployment `{id}` is already {state}; your click changed nothing.",
                id=run.id,
                state=run.state.words,
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
                    state=result.deployment.state.words,
                )
            raise Forbidden("You already decided on this deployment; each approver counts once.")
        if result.deployment.state is not DeploymentState.AWAITING_APPROVAL:
            self._timers.disarm(approval_timer(run.id))
        if result.started:
            self._runner.submit(run.id)
        return result.deployment

    # -- due work --------------------------------------------------------------------------
    # Expiry, approval timers and orphan recovery are `PendingRequests`' work; the runtime's
    # timers and sweep and the rollback commands reach them through here.

    async def expire(self, deployment_id: str) -> bool:
        """Expire a request whose approval window has passed, and redraw its card.

        Returns False (changing nothing) when it is not due or already decided.
        """
        return await self._pending.expire(deployment_id)

    async def expire_due(self) -> list[str]:
        """Expire every request whose window has passed (the safety sweep). Returns their ids."""
        return await self._pending.expire_due()

    async def recover_orphans(self) -> list[str]:
        """Post or end the requests a crash left without a card (start-up and the safety
        sweep); see `PendingRequests.recover_orphans`. Returns the ids dealt with."""
        return await self._pending.recover_orphans()

    async def arm_timers(self) -> int:
        """Arm a timer for every request awaiting approval (at start-up). Returns how many."""
        return await self._pending.arm_timers()

    async def redraw(self, run: Deployment) -> None:
        """Draw `run` on its card (no-op without a card)."""
        await self._notifier.redraw(run)

    # -- records ---------------------------------------------------------------------------

    async def get(self, deployment_id: str) -> Deployment:
        """The recorded run `deployment_id`; raises NotFound when there is none."""
        return await self._pending.get(deployment_id)

    async def history(self, environment: str | None) -> list[Deployment]:
        return await self._deployments.list_recent(environment=environment, limit=HISTORY_LIMIT)
