"""The buttons of a canary's card: Promote (end this bake now), Hold (stop the bake's clock),
Resume (go on with the bake time that was left) and Abort (flip back now).

Only the environment's approvers and rollbackers may steer; every change is a compare-and-set,
so a double click or two people clicking at once change the canary once. Once an Abort is
taken, every other click is refused, naming who aborted.
"""

from __future__ import annotations

from commands.access import Access
from commands.exchange import Click, Outcome
from commands.runs.lifecycle import Runs
from pipeline.kernel.config import Config
from pipeline.kernel.errors import Forbidden
from pipeline.kernel.ports import Clock
from pipeline.kernel.text import People, Person, line
from pipeline.runner import Runner
from pipeline.steps import stage_event
from store.deploy.models import Deployment, DeploymentState, RolloutStage, StageStatus
from store.deploy.repository import Deployments
from store.deploy.stages import RolloutStages


class CanaryCommands:
    def __init__(
        self,
        *,
        config: Config,
        deployments: Deployments,
        stages: RolloutStages,
        runs: Runs,
        runner: Runner,
        access: Access,
        clock: Clock,
    ) -> None:
        self._config = config
        self._deployments = deployments
        self._stages = stages
        self._runs = runs
        self._runner = runner
        self._access = access
        self._clock = clock

    async def _steerable(self, click: Click) -> tuple[Deployment, RolloutStage]:
        run = await self._runs.get(click.value)
        env = self._config.environment(run.environment)
        allowed = [*env.approvers, *(env.may_roll_back_ids() or [])]
        if allowed and not await self._access.is_member(click.user_id, allowed):
            raise Forbidden(
                "Only approvers and rollbackers of `{env}` can steer a canary: {who}. Your "
                "click changed nothing.",
                env=env.name,
                who=People.of(dict.fromkeys(allowed)),
            )
        _refuse_if_aborted(run)
        stage = run.current_stage
        if run.state is not DeploymentState.RUNNING or stage is None or stage.ended_at:
            raise Forbidden(
                "No canary stage of `{id}` is baking right now ({state}); your click changed "
                "nothing.",
                id=run.id,
                state=run.state.words,
            )
        return run, stage

    async def _refused(self, run: Deployment, sentence: str) -> Forbidden:
        """Why a compare-and-set changed nothing: an Abort taken since the click read the run
        (naming who), else `sentence`."""
        _refuse_if_aborted(await self._runs.get(run.id))
        return Forbidden(sentence)

    async def _done(self, run: Deployment, what: str, user_id: str, *, thread: bool) -> Outcome:
        """Wake the run; record who steered it, and say so in the thread (`thread`; a promote
        is said there by the run itself when the next stage starts)."""
        by = line("by {who}", who=Person(user_id))
        if thread:
            await self._runs.said(run, "canary", what, by)
        else:
            await self._deployments.record_event(
                stage_event(run, "canary", what, by, at=self._clock.now())
            )
        self._runner.wake(run.id)
        return Outcome(cards=(await self._runs.get(run.id),), audit=what, ref=run.id)

    async def on_promote(self, click: Click) -> Outcome:
        run, stage = await self._steerable(click)
        if not await self._stages.promote(run.id, position=stage.position, by=click.user_id):
            raise await self._refused(
                run, "That stage was promoted already; your click changed nothing."
            )
        return await self._done(
            run, f"promoted the {stage.weight}% stage", click.user_id, thread=False
        )

    async def on_hold(self, click: Click) -> Outcome:
        return await self._pause(click, hold=True)

    async def on_resume(self, click: Click) -> Outcome:
        return await self._pause(click, hold=False)

    async def _pause(self, click: Click, *, hold: bool) -> Outcome:
        """Hold stops the stage's bake clock (who and when are kept); Resume starts it again."""
        run, stage = await self._steerable(click)
        held, baking = StageStatus.HELD, StageStatus.BAKING
        if not await self._stages.steer(
            run.id,
            position=stage.position,
            from_status=baking if hold else held,
            to_status=held if hold else baking,
            held_by=click.user_id if hold else None,
            held_at=self._clock.now() if hold else None,
        ):
            state = "held already" if hold else "not held"
            raise await self._refused(run, f"That stage is {state}; your click changed nothing.")
        done = "held" if hold else "resumed"
        return await self._done(
            run, f"{done} the {stage.weight}% stage", click.user_id, thread=True
        )

    async def on_abort(self, click: Click) -> Outcome:
        run, stage = await self._steerable(click)
        aborted = line(
            "{who} aborted it at the {weight}% stage",
            who=Person(click.user_id),
            weight=stage.weight,
        )
        if not await self._stages.abort(
            run.id,
            position=stage.position,
            by=click.user_id,
            at=self._clock.now(),
            error=aborted.plain(),
            error_line=aborted.dumps(),
        ):
            raise await self._refused(
                run, "The canary is no longer running; your click changed nothing."
            )
        self._runner.stop(run.id)
        return await self._done(
            run, f"aborted at the {stage.weight}% stage", click.user_id, thread=True
        )


def _refuse_if_aborted(run: Deployment) -> None:
    """Raise Forbidden, naming who, when an Abort of `run`'s canary was taken."""
    aborted_by = next((s.aborted_by for s in reversed(run.stages) if s.aborted_by), None)
    if aborted_by is None:
        return
    doing = "was aborted" if run.state.finished else "is being aborted"
    raise Forbidden(
        f"The canary of `{{id}}` {doing} by {{who}}; your click changed nothing.",
        id=run.id,
        who=Person(aborted_by),
    )
