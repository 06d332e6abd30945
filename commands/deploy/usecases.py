"""`/deploy` and its Approve/Reject buttons: the request, the decisions, records.

No Slack types here: `bot/` turns payloads into `Invocation`/`Click`, and renders what these
handlers return. A request is planned and recorded here (`planning.py`) and published by
`Runs` (commands/runs): its card posted, cancelled when it cannot be posted, started when no
approval is needed; what becomes of a request nobody decides on is `Runs`' work too.
"""

from __future__ import annotations

from commands.access import Access
from commands.deploy.parse import (
    DeployCommand,
    DeployRequest,
    HistoryRequest,
    StatsRequest,
    StatusRequest,
    usage,
)
from commands.deploy.planning import DeployPlanner
from commands.deploy.replies import DryRun, History, Record
from commands.deploy.stats import DeliveryFigures
from commands.exchange import Answer, Click, Invocation, Later, Outcome
from commands.parsing import Help
from commands.runs.lifecycle import Runs
from commands.runs.records import new_deployment_id
from pipeline.kernel.config import Config
from pipeline.kernel.errors import DeployConflict, Forbidden
from pipeline.kernel.ports import Clock, Notifier
from pipeline.kernel.text import People
from pipeline.runner import Runner
from store.deploy.models import (
    Decision,
    Deployment,
    DeploymentId,
    DeploymentState,
)
from store.deploy.repository import Deployments

HISTORY_LIMIT = 10


class DeployCommands:
    """What `/deploy` and its buttons do. Reads ECS through the planner, Slack through ports."""

    def __init__(
        self,
        *,
        config: Config,
        deployments: Deployments,
        planner: DeployPlanner,
        runs: Runs,
        runner: Runner,
        access: Access,
        notifier: Notifier,
        clock: Clock,
        figures: DeliveryFigures,
    ) -> None:
        self._figures = figures
        self._config = config
        # Asked for often, the same while the bot runs: built once (and so drawn once).
        self._help = usage(config)
        self._deployments = deployments
        self._planner = planner
        self._runs = runs
        self._runner = runner
        self._access = access
        self._notifier = notifier
        self._clock = clock

    # -- /deploy ---------------------------------------------------------------------------

    async def answer(self, parsed: DeployCommand, inv: Invocation) -> Answer:
        """Answer a parsed `/deploy` request about deploys: help, status, history, delivery
        figures, a deploy."""
        if isinstance(parsed, Help):
            return Outcome(reply=self._help, audit="help")
        if isinstance(parsed, StatusRequest):
            run = await self._runs.get(parsed.deployment_id)
            window_s = self._config.environment(run.environment).rollback_window_s
            record = Record(run, self._clock.now(), window_s / 60, as_json=parsed.as_json)
            return Outcome(reply=record, ref=run.id)
        if isinstance(parsed, HistoryRequest):
            runs = await self.history(parsed.environment)
            reverters = await self._deployments.get_many(
                run.reverted_by for run in runs if run.reverted_by is not None
            )
            return Outcome(reply=History(tuple(runs), parsed.environment, reverters))
        if isinstance(parsed, StatsRequest):
            stats = parsed

            # Answered after the ack: a long period of a busy environment may take longer to
            # read than Slack waits for one.
            async def figures() -> Outcome:
                return Outcome(reply=await self._figures.figures(stats))

            return Later(figures)
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
        with self._runs.posting(deployment_id):
            planned = await self._planner.plan(
                request, user_id=user_id, channel_id=channel_id, deployment_id=deployment_id
            )
            if isinstance(planned, DryRun):
                return Outcome(reply=planned, audit="dry run: nothing changed")
            outcome = await self._runs.publish(planned)
        if planned.break_glass and outcome.error is None:
            await self._notifier.break_glass(await self._runs.get(planned.id))
            return Outcome(
                reply=outcome.reply,
                cards=outcome.cards,
                audit=f"{outcome.audit} (break-glass: {planned.break_glass})",
                ref=outcome.ref,
            )
        return outcome

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
        run = await self._runs.adopt_card(await self._runs.get(click.value), click)
        try:
            after = await self._decide(run, user_id=click.user_id, decision=decision)
        except (Forbidden, DeployConflict) as exc:
            latest = await self._runs.get(run.id)
            return Outcome(error=exc, cards=(latest,) if latest.state.finished else (), ref=run.id)
        if after.state is DeploymentState.REJECTED:
            await self._runs.ended(run.id)
        # Re-read: once started, the runner may already have moved the run on.
        latest = await self._runs.get(run.id)
        return Outcome(cards=(latest,), audit=after.state.value, ref=run.id)

    async def _decide(self, run: Deployment, *, user_id: str, decision: Decision) -> Deployment:
        env = self._config.environment(run.environment)
        if (
            run.state is DeploymentState.AWAITING_APPROVAL
            and run.approval_due_at is not None
            and run.approval_due_at <= self._clock.now()
        ):
            # The timer may not have fired yet; the window must hold at the click too.
            await self._runs.expire(run.id)
            run = await self._runs.get(run.id)
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
            self._runs.disarm_timer(run.id)
        if result.started:
            self._runner.submit(run.id)
        return result.deployment

    # -- records ---------------------------------------------------------------------------

    async def history(self, environment: str | None) -> list[Deployment]:
        return await self._deployments.list_recent(environment=environment, limit=HISTORY_LIMIT)
