"""The canary strategy: blue/green ECS services behind a weighted ALB listener (Argo Rollouts'
model on ECS).

A release puts the new revision on the idle colour at the live colour's size, waits until ECS
runs it and its target group reports it healthy, checks its health endpoints, then shifts the
listener's weights stage by stage (seed 003: 5% for 5 minutes, 50% for 10, 100% for 15). All
canary services of a run move together. During each bake, every tick checks each new colour's
health endpoints and the 5xx gate; one failure anywhere fails the release, and the engine flips
every service back to its old colour. After 100%, smoke tests; the old colour stays up for the
rollback window, so a rollback inside it is a flip.

Crash safety: stages are rows with the bake time they used; weights are read before they are
set; a resumed run continues the same stage with the bake time that was left.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence

from pipeline.canary.gate import Verdict, read_gate
from pipeline.fleet import blue_green
from pipeline.kernel.config import Environment
from pipeline.kernel.config.canary import COLOURS, CanaryStage
from pipeline.kernel.errors import ChatOpsError, StageFailed
from pipeline.kernel.text import Person, counted, line
from pipeline.kernel.traffic import LoadBalancer, Metrics
from pipeline.steps import Steps, rev
from pipeline.tasks import first_done
from store.deploy.models import (
    Deployment,
    RolloutStage,
    ServiceFigures,
    StageStatus,
    Target,
    TargetStatus,
)
from store.deploy.stages import RolloutStages

log = logging.getLogger(__name__)

# The card is redrawn at most this often during a bake, whatever the check cadence; a stage
# shorter than a few of these (the sandbox's stages of seconds) is redrawn at each third of its
# bake, so its figures and its countdown still show.
CARD_UPDATE_MIN_S = 5.0
CARD_UPDATES_PER_STAGE = 3


def other(colour: str) -> str:
    return "green" if colour == "blue" else "blue"


def stage_name(position: int, count: int) -> str:
    """Seed 003's names: canary, progressive..., full."""
    if position == count - 1:
        return "full"
    return "canary" if position == 0 else "progressive"


class CanaryFailed(StageFailed):
    """A canary stage failed (health, the 5xx gate, missing data, a smoke test)."""


class CanaryStrategy:
    def __init__(
        self,
        steps: Steps,
        *,
        stages: RolloutStages,
        load_balancer: LoadBalancer,
        metrics: Metrics,
    ) -> None:
        self._steps = steps
        self._stages = stages
        self._lb = load_balancer
        self._metrics = metrics
        self._drawn_at: dict[str, float] = {}

    # -- a release -----------------------------------------------------------------------

    async def release(
        self, run: Deployment, env: Environment, targets: Sequence[Target], wake: asyncio.Event
    ) -> None:
        """Prepare every canary service, run the stages together, then the smoke tests.
        Raises ChatOpsError when anything fails (the engine then flips everything back)."""
        async with asyncio.TaskGroup() as tg:
            for target in targets:
                if target.status is not TargetStatus.HEALTHY:
                    tg.create_task(self._prepare(run, env, target))
        run = await self._steps.require(run.id)
        names = {t.service for t in targets}
        ready = [t for t in run.active_targets if t.service in names]
        stages = env.canary.stages
        for position, stage in enumerate(stages):
            done = next((s for s in run.stages if s.position == position), None)
            if done is not None and done.ended_at is not None:
                continue
            await self._stage(run, env, ready, position, stage, wake)
            run = await self._steps.require(run.id)
        await self._smoke(run, env, ready)
        for t in ready:
            await self._steps.deployments.update_target(
                run.id, t.service, status=TargetStatus.HEALTHY
            )

    async def _prepare(self, run: Deployment, env: Environment, target: Target) -> None:
        steps = self._steps
        store = steps.deployments
        svc = steps.config.service(target.service)
        canary = blue_green(env, svc)
        try:
            colour = target.canary_colour
            if colour is None:
                weights = await self._steps.fleet.colour_weights(env, svc)
                colour = other(max(COLOURS, key=lambda c: weights[c]))
                await store.update_target(run.id, svc.name, canary_colour=colour)
            old, new = canary.colour(other(colour)), canary.colour(colour)
            old_status = await steps.describe(env, old.ecs_service)
            if target.new_task_def is None or target.previous_task_def is None:
                current = await steps.running_version(env, svc, ecs_service=old.ecs_service)
                target = await steps.register_target(
                    run, env, svc, target, based_on=current.task_definition
                )
            new_td = target.new_task_def
            assert new_td is not None
            desired = max(old_status.desired, 1)
            await store.update_target(run.id, svc.name, status=TargetStatus.UPDATING)
            await steps.move_to(env, new.ecs_service, task_definition=new_td, desired=desired)
            await steps.event(
                run,
                "update",
                "requested",
                service=svc.name,
                detail=f"{colour} now on {rev(new_td)} with {counted(desired, 'task')}",
            )
            label = f"{svc.name} ({colour})"
            await steps.wait_steady(env, new.ecs_service, label=label, task_definition=new_td)
            await self._wait_targets(env, new.target_group, desired, label)
            await store.update_target(run.id, svc.name, status=TargetStatus.STABLE)
            summary = await steps.check_health(env, svc, base_url=new.health_url)
            await steps.event(
                run, "health", "passed", service=svc.name, detail=f"{colour}: {summary}"
            )
        except ChatOpsError as exc:
            await steps.target_failed(run, svc.name, exc, stage="canary")
            raise

    async def _wait_targets(
        self, env: Environment, target_group: str, desired: int, label: str
    ) -> None:
        clock = self._steps.clock
        deadline = clock.now().timestamp() + env.canary.ready_timeout_s
        while True:
            health = await self._lb.target_health(region=env.region, target_group=target_group)
            if health.healthy >= desired and health.other == 0:
                return
            if clock.now().timestamp() >= deadline:
                raise CanaryFailed(
                    "ready",
                    f"`{label}`'s target group did not report "
                    f"{counted(desired, 'healthy target')} in "
                    f"time ({health.healthy} healthy, {health.other} not).",
                )
            await clock.sleep(env.rollout.poll_interval_s)

    async def shift(
        self, run: Deployment, env: Environment, targets: Sequence[Target], weight: int
    ) -> None:
        """Put `weight`% of each service's traffic on its `canary_colour`, the rest on the
        other one; a listener already there is left alone."""

        async def one(t: Target) -> None:
            assert t.canary_colour is not None
            svc = self._steps.config.service(t.service)
            canary = blue_green(env, svc)
            wanted = {t.canary_colour: weight, other(t.canary_colour): 100 - weight}
            if await self._steps.fleet.colour_weights(env, svc) == wanted:
                return
            await self._lb.set_weights(
                region=env.region,
                listener=canary.listener,
                rule=canary.rule,
                weights={canary.colour(c).target_group: w for c, w in wanted.items()},
            )
            await self._steps.event(
                run,
                "traffic",
                "shifted",
                service=t.service,
                detail=f"{weight}% on {t.canary_colour}, {100 - weight}% on "
                f"{other(t.canary_colour)}",
            )

        async with asyncio.TaskGroup() as tg:
            for t in targets:
                tg.create_task(one(t))

    # -- a stage -------------------------------------------------------------------------

    async def _stage(
        self,
        run: Deployment,
        env: Environment,
        targets: Sequence[Target],
        position: int,
        stage: CanaryStage,
        wake: asyncio.Event,
    ) -> None:
        steps = self._steps
        name = stage_name(position, len(env.canary.stages))
        started = await self._stages.start(
            run.id,
            position=position,
            weight=stage.weight,
            bake_s=stage.bake_s,
            at=steps.clock.now(),
        )
        if started:
            await steps.event(run, name, "started", detail=f"{stage.weight}% of the traffic")
        await self.shift(run, env, targets, stage.weight)
        await self._draw(run.id, force=True)
        await self._bake(run, env, targets, position, stage, wake)

    async def _bake(
        self,
        run: Deployment,
        env: Environment,
        targets: Sequence[Target],
        position: int,
        stage: CanaryStage,
        wake: asyncio.Event,
    ) -> None:
        steps = self._steps
        settings = env.canary
        name = stage_name(position, len(settings.stages))
        without_data: dict[str, float] = {t.service: 0.0 for t in targets}
        while True:
            row = await self._row(run.id, position)
            if row.promoted_by is not None:
                await self._stages.end(
                    run.id,
                    position=position,
                    status=StageStatus.PROMOTED,
                    at=steps.clock.now(),
                    detail=f"promoted by {row.promoted_by}",
                )
                await steps.event(
                    run, name, "promoted", detail=line("by {who}", who=Person(row.promoted_by))
                )
                return
            if row.status is StageStatus.HELD:
                await wake.wait()
                wake.clear()
                continue
            ticked = bool(row.figures)
            have_data = ticked and all(f.data for f in row.figures.values())
            if row.elapsed_s >= stage.bake_s and have_data:
                await self._stages.end(
                    run.id, position=position, status=StageStatus.PASSED, at=steps.clock.now()
                )
                await steps.event(run, name, "passed", detail=f"{stage.weight}% baked")
                return
            # The first check comes at once; then one per cadence tick, until the bake is done
            # and every new colour has shown data (no data is never a pass).
            left = stage.bake_s - row.elapsed_s
            step = (
                0.0
                if not ticked
                else min(settings.check_every_s, left)
                if left > 0
                else (settings.check_every_s)
            )
            slept = await self._nap(step, wake)
            figures, failure = await self._tick(env, targets, row, without_data, slept)
            await self._stages.progress(
                run.id, position=position, elapsed_s=row.elapsed_s + slept, figures=figures
            )
            if failure is not None:
                await self._stages.end(
                    run.id,
                    position=position,
                    status=StageStatus.FAILED,
                    at=steps.clock.now(),
                    detail=failure,
                )
                await steps.event(run, name, "failed", detail=failure)
                raise CanaryFailed("canary", f"The {stage.weight}% stage failed: {failure}")
            # The first check of a stage is drawn at once: "no check yet" goes as it comes.
            every = min(CARD_UPDATE_MIN_S, stage.bake_s / CARD_UPDATES_PER_STAGE)
            await self._draw(run.id, force=not ticked, every_s=every)

    async def _row(self, deployment_id: str, position: int) -> RolloutStage:
        run = await self._steps.require(deployment_id)
        row = next((s for s in run.stages if s.position == position), None)
        if row is None:
            raise RuntimeError(f"Stage {position} of {deployment_id} was never started.")
        return row

    async def _nap(self, seconds: float, wake: asyncio.Event) -> float:
        """Sleep on the clock, woken early by a button; the seconds that passed."""
        clock = self._steps.clock
        before = clock.now()
        await first_done(clock.sleep(seconds), wake.wait())
        if wake.is_set():
            wake.clear()
        return (clock.now() - before).total_seconds()

    async def _tick(
        self,
        env: Environment,
        targets: Sequence[Target],
        row: RolloutStage,
        without_data: dict[str, float],
        slept: float,
    ) -> tuple[dict[str, ServiceFigures], str | None]:
        """Each new colour's health endpoints (one try each) and its 5xx gate."""
        steps = self._steps
        figures: dict[str, ServiceFigures] = {}
        failures: list[str] = []
        for t in targets:
            assert t.canary_colour is not None
            svc = steps.config.service(t.service)
            colour = blue_green(env, svc).colour(t.canary_colour)
            results = await steps.health.probe(
                base_url=colour.health_url,
                paths=svc.health_paths or env.health.paths,
                settings=env.health,
            )
            bad = [r for r in results if not r.healthy]
            sums = await self._metrics.sums(
                region=env.region,
                load_balancer=blue_green(env, svc).load_balancer,
                target_group=colour.target_group,
                start=row.started_at,
                end=steps.clock.now(),
            )
            if sums.requests is None:
                without_data[t.service] += slept
            else:
                without_data[t.service] = 0.0
            reading = read_gate(sums, env.canary, without_data_s=without_data[t.service])
            figures[t.service] = ServiceFigures(
                data=sums.requests is not None,
                healthy=not bad,
                health_detail=", ".join(f"`{r.path}` {r.detail}" for r in bad) or None,
                requests=reading.requests,
                errors_5xx=reading.errors,
                slowest_s=reading.slowest_s,
                slow=reading.slow,
                gate=reading.why,
            )
            if bad:
                failures.append(
                    f"`{t.service}` ({t.canary_colour}) failed its health check "
                    + ", ".join(f"`{r.path}` ({r.detail})" for r in bad)
                )
            if reading.verdict is Verdict.FAIL:
                failures.append(f"`{t.service}` ({t.canary_colour}): {reading.why}")
        return figures, "; ".join(failures) or None

    async def _draw(
        self, deployment_id: str, *, force: bool = False, every_s: float = CARD_UPDATE_MIN_S
    ) -> None:
        now = self._steps.clock.now().timestamp()
        last = self._drawn_at.get(deployment_id)
        if force or last is None or now - last >= every_s:
            self._drawn_at[deployment_id] = now
            await self._steps.redraw(await self._steps.require(deployment_id))

    # -- smoke tests ---------------------------------------------------------------------

    async def _smoke(self, run: Deployment, env: Environment, targets: Sequence[Target]) -> None:
        steps = self._steps
        failures = []
        for t in targets:
            svc = steps.config.service(t.service)
            if not svc.smoke:
                continue
            assert t.canary_colour is not None
            base = blue_green(env, svc).colour(t.canary_colour).health_url.rstrip("/")
            for check in svc.smoke:
                answer = await steps.health.request(
                    check.method, base + check.path, timeout_s=env.health.timeout_s
                )
                problem = None
                if answer.status != check.expect_status:
                    problem = f"answered {answer.status}, expected {check.expect_status}"
                elif answer.latency_s > check.max_latency_s:
                    problem = f"took {answer.latency_s:.2f}s, more than {check.max_latency_s:g}s"
                elif check.version_field is not None:
                    seen = _field(answer.body, check.version_field)
                    if seen is None or seen.lstrip("v") != t.target_version.lstrip("v"):
                        problem = f"says {check.version_field} {seen!r}, not {t.target_version}"
                if problem is not None:
                    failures.append(f"`{t.service}` {check.method} {check.path} {problem}")
        if failures:
            detail = "; ".join(failures)
            await steps.event(run, "smoke", "failed", detail=detail)
            raise CanaryFailed("smoke", f"Smoke tests failed: {detail}.")
        if any(steps.config.service(t.service).smoke for t in targets):
            await steps.event(run, "smoke", "passed")

    # -- going back, and after the window ------------------------------------------------

    async def flip_back(self, run: Deployment, env: Environment, target: Target) -> str | None:
        """All of a failed canary's traffic back on its old colour, which is health-checked;
        the new colour is scaled to 0. The failure, or None."""
        steps = self._steps
        store = steps.deployments
        svc = steps.config.service(target.service)
        assert target.canary_colour is not None
        back = other(target.canary_colour)
        await store.update_target(run.id, svc.name, status=TargetStatus.ROLLING_BACK)
        try:
            flipped = target.model_copy(update={"canary_colour": back})
            await self.shift(run, env, [flipped], 100)
            canary = blue_green(env, svc)
            summary = await steps.check_health(env, svc, base_url=canary.colour(back).health_url)
            await steps.move_to(env, canary.colour(target.canary_colour).ecs_service, desired=0)
        except ChatOpsError as exc:
            await store.update_target(
                run.id, svc.name, status=TargetStatus.ROLLBACK_FAILED, detail=exc.user_message
            )
            await steps.event(run, "rollback", "failed", service=svc.name, detail=exc.user_message)
            return exc.user_message
        await store.update_target(
            run.id, svc.name, status=TargetStatus.ROLLED_BACK, detail=f"100% on {back}: {summary}"
        )
        await steps.event(
            run, "rollback", "done", service=svc.name, detail=f"traffic flipped back to {back}"
        )
        return None

    async def revert(self, run: Deployment, env: Environment, target: Target) -> bool:
        """A rollback run's canary service: when one colour still runs the revision to go back
        to, flip the traffic to it (seconds, no new tasks) and check its health. False when no
        colour does (a release of that revision is needed)."""
        steps = self._steps
        svc = steps.config.service(target.service)
        canary = blue_green(env, svc)
        for colour in COLOURS:
            status = await steps.describe(env, canary.colour(colour).ecs_service)
            if (
                status.task_definition == target.new_task_def
                and status.desired > 0
                and status.running == status.desired
            ):
                break
        else:
            return False
        try:
            await steps.deployments.update_target(
                run.id, svc.name, canary_colour=colour, status=TargetStatus.UPDATING
            )
            await self.shift(run, env, [target.model_copy(update={"canary_colour": colour})], 100)
            summary = await steps.check_health(env, svc, base_url=canary.colour(colour).health_url)
        except ChatOpsError as exc:
            await steps.deployments.update_target(
                run.id, svc.name, status=TargetStatus.FAILED, detail=exc.user_message
            )
            raise
        await steps.deployments.update_target(
            run.id, svc.name, status=TargetStatus.HEALTHY, detail=f"100% on {colour}: {summary}"
        )
        await steps.event(
            run, "rollback", "done", service=svc.name, detail=f"traffic flipped to {colour}"
        )
        return True

    async def retire(self, run: Deployment, env: Environment) -> list[str]:
        """After the rollback window: scale each canary service's old colour to 0. Returns the
        services retired; a failure is recorded in the timeline and left for the next try."""
        steps = self._steps
        retired = []
        for t in run.active_targets:
            if t.canary_colour is None or t.reverted_by is not None:
                continue
            svc = steps.config.service(t.service)
            old = blue_green(env, svc).colour(other(t.canary_colour))
            try:
                await steps.move_to(env, old.ecs_service, desired=0)
            except ChatOpsError as exc:
                await steps.event(
                    run, "retire", "failed", service=t.service, detail=exc.user_message
                )
                continue
            await steps.event(
                run, "retire", "done", service=t.service, detail=f"{other(t.canary_colour)} at 0"
            )
            retired.append(t.service)
        return retired


def _field(body: bytes, name: str) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    value = data.get(name) if isinstance(data, dict) else None
    return str(value) if value is not None else None
