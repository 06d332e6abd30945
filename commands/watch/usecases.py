"""The post-deploy watch: each service a successful run changed is read from CloudWatch on a
timer (`watch:<id>`) until its period ends, judged against its thresholds, and alerted on once
per breach; and compared with the hour before its deploy (read once and kept with the watch),
warned of once per signal that regressed under its thresholds.

Restart safety: a watch is rows in the store; each check is a compare-and-set that records its
alert in the same transaction, and the alert is posted afterwards and marked posted. At
start-up (and in the sweep) the timers are armed again and any alert recorded but not posted
is posted: a crash loses no alert, and a check repeated after one records none twice. A post
is marked tried before Slack is asked; a tried post never confirmed (the bot died waiting for
Slack's answer) is looked for in the channel by its metadata first, and an automatic rollback
recorded since the alert is not started again: nothing is posted or rolled back twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial

from commands.watch.decide import Decision, decide
from pipeline.kernel.config import Config
from pipeline.kernel.config.watch import WatchSettings
from pipeline.kernel.errors import ChatOpsError, UpstreamError
from pipeline.kernel.ports import Clock, TimerKind, Timers, WatchChat
from pipeline.kernel.traffic import ServiceMetrics
from pipeline.leases import Firings
from pipeline.watch import Judgement, Regression, baseline_of, compare, judge, source_of
from store.deploy.models import Deployment, DeploymentState
from store.deploy.repository import Deployments
from store.watch import AlertKind, Watch, WatchAlert, Watches, WatchState

log = logging.getLogger(__name__)

# Start a rollback of a deploy inside its window, for the reason given; the rollback's id, or
# None when it cannot start at once (window closed, taken back already, migrations to undo).
RollBack = Callable[[Deployment, str], Awaitable[str | None]]


@dataclass(frozen=True)
class Observation:
    """One check's reading: the judgement, the regressions against before the deploy, and the
    baseline when this check read it (None when the watch kept one already)."""

    judgement: Judgement
    regressions: tuple[Regression, ...] = ()
    baseline: dict[str, tuple[float, ...]] | None = None


# Minutes read before the longest duration, so a breach straddling two checks is seen whole.
_MARGIN_S = 120.0


# A rollback in these states never touched ECS: the watch may start another.
_NEVER_RAN = frozenset(
    {DeploymentState.CANCELLED, DeploymentState.EXPIRED, DeploymentState.REJECTED}
)

# The timer of a watch's next check.
watch_timer = TimerKind.WATCH.key


class PostDeployWatch:
    """Starts, checks and ends the watches of successful runs. Touches CloudWatch and Slack."""

    def __init__(
        self,
        *,
        config: Config,
        deployments: Deployments,
        watches: Watches,
        metrics: ServiceMetrics,
        chat: WatchChat,
        timers: Timers,
        clock: Clock,
        roll_back: RollBack | None = None,
        firings: Firings | None = None,
    ) -> None:
        """With `firings` (replicas), each check and each alert's post is claimed across
        replicas first, so one replica does it."""
        self._firings = firings
        self._roll_back = roll_back
        # Checks of several watches may run at once (their timers fire together); one poster
        # at a time keeps an unposted alert from being taken by two of them.
        self._posting = asyncio.Lock()
        self._config = config
        self._deployments = deployments
        self._watches = watches
        self._metrics = metrics
        self._chat = chat
        self._timers = timers
        self._clock = clock

    def _settings(self, environment: str) -> WatchSettings:
        return self._config.environment(environment).watch

    async def begin(self, run: Deployment) -> list[Watch]:
        """Watch each service `run` changed, when its environment watches (none otherwise).
        Idempotent: a run already watched keeps its watches."""
        settings = self._settings(run.environment)
        period = settings.period_in(run.environment)
        if run.state is not DeploymentState.SUCCEEDED or period <= 0:
            return []
        start = run.finished_at or self._clock.now()
        first = start + timedelta(seconds=settings.dense_every_s)
        fresh = [
            Watch(
                id=f"{run.id}:{t.service}",
                deployment_id=run.id,
                service=t.service,
                environment=run.environment,
                started_at=start,
                ends_at=start + timedelta(seconds=period),
                next_check_at=first,
                state=WatchState.WATCHING,
            )
            for t in run.active_targets
        ]
        stored = await self._watches.start(fresh)
        for w in stored:
            if w.state is WatchState.WATCHING:
                self._timers.arm(watch_timer(w.id), w.next_check_at)
        await self._chat.show(run)
        await self._supersede(stored)
        return stored

    async def _supersede(self, newer: list[Watch]) -> None:
        """End the watches of earlier runs that changed the same services here: the newer
        watch reads the same series, and its alert names the run that changed them last."""
        for old in await self._watches.watching():
            by = next((w for w in newer if _supersedes(w, old)), None)
            run = await self._deployments.get(old.deployment_id) if by else None
            if by is not None and run is not None:
                await self._end(run, old, superseded_by=by.deployment_id)

    async def begin_missed(self) -> int:
        """Start the watches of runs that succeeded within their period and have none (the
        bot stopped between a run's success and its watch). At start-up and in the sweep."""
        now = self._clock.now()
        started = 0
        for env in self._config.environments.values():
            period = env.watch.period_in(env.name)
            if period <= 0:
                continue
            for run in await self._deployments.succeeded(environment=env.name, limit=50):
                finished = run.finished_at
                if finished is None or (now - finished).total_seconds() >= period:
                    continue
                if not await self._watches.of_run(run.id):
                    started += bool(await self.begin(run))
        return started

    async def check(self, watch_id: str) -> None:
        """The timer came due: read, judge, record (alert included), then post and re-arm."""
        watch = await self._watches.get(watch_id)
        if watch is None or watch.state is not WatchState.WATCHING:
            return
        now = self._clock.now()
        if now < watch.next_check_at:
            self._timers.arm(watch_timer(watch.id), watch.next_check_at)
            return
        key, due = watch_timer(watch.id), watch.next_check_at
        if self._firings is not None and not await self._firings.claim(key, due):
            return  # another replica checks it
        try:
            await self._check(watch, now)
        except BaseException:
            if self._firings is not None:
                await self._firings.release(key, due)
            raise
        if self._firings is not None:
            await self._firings.done(key, due)

    async def _check(self, watch: Watch, now: datetime) -> None:
        run = await self._deployments.get(watch.deployment_id)
        if run is None:
            await self._watches.end(watch.id, outcome="its run is gone")
            return
        if now >= watch.ends_at or _taken_back(run, watch.service):
            await self._end(run, watch)
            return
        newer = [w for w in await self._watches.watching() if _supersedes(w, watch)]
        if newer:
            await self._end(run, watch, superseded_by=newer[0].deployment_id)
            return
        settings = self._settings(watch.environment)
        try:
            seen = await self._observe(run, watch, settings, now)
        except UpstreamError as exc:
            # The watch is kept and read again at the next interval; the card names the cause.
            await self._record(
                watch, now, settings, failure=exc.user_message, figures=watch.figures
            )
            await self._chat.show(run)
            return
        decision = decide(watch, seen.judgement, seen.regressions, now)
        alert = decision.alert
        if (
            alert is not None
            and alert.kind is AlertKind.BREACH
            and settings.rollback
            and run.window_open(now)
        ):
            # Only a breach: a regression under the thresholds is a warning, never a rollback.
            alert = alert.model_copy(update={"kind": AlertKind.ROLLED_BACK})
        if await self._record(
            watch,
            now,
            settings,
            figures=seen.judgement.figures(),
            decision=replace(decision, alert=alert),
            baseline=seen.baseline,
        ):
            await self.post_unposted()
            await self._chat.show(run)

    async def _observe(
        self, run: Deployment, watch: Watch, settings: WatchSettings, now: datetime
    ) -> Observation:
        """Read the service's minutes and judge them; compare them with the minutes before the
        deploy, read once (the first check) and kept with the watch."""
        env = self._config.environment(watch.environment)
        source = source_of(self._config, run, watch.service)
        thresholds = settings.thresholds_for(watch.service)
        read = partial(
            self._metrics.minutes,
            region=env.region,
            cluster=env.cluster,
            service=source.ecs_service,
            load_balancer=source.load_balancer,
            target_group=source.target_group,
            p99=thresholds.max_p99_response_s is not None,
        )
        longest = max(thresholds.error_for_s, thresholds.response_for_s)
        longest = max(longest, thresholds.utilisation_for_s) + _MARGIN_S
        start = max(watch.started_at, now - timedelta(seconds=longest))
        # The hour after the deploy is compared with the hour before it (as long as the
        # baseline), until one check after it ends: later hours differ by the time of day.
        after_end = watch.started_at + timedelta(seconds=settings.baseline_s)
        comparing = settings.compare and now <= after_end + timedelta(seconds=settings.every_s)
        minutes = await read(start=watch.started_at if comparing else start, end=now)
        judgement = judge(
            minutes,
            thresholds,
            now=now,
            since=watch.started_at,
            target_group=source.target_group is not None,
        )
        if not comparing:
            return Observation(judgement)
        signals = [r.signal for r in judgement.readings]
        baseline, fresh = watch.baseline, None
        if baseline is None:
            began = run.started_at or watch.started_at
            start = began - timedelta(seconds=settings.baseline_s)
            before = await read(start=start, end=began)
            baseline = fresh = baseline_of(before, signals, start=start, end=began)
        regressions = compare(
            baseline,
            minutes,
            signals,
            thresholds,
            start=watch.started_at,
            end=min(now, after_end),
            min_samples=settings.min_samples,
        )
        return Observation(judgement, regressions, fresh)

    async def _record(
        self,
        watch: Watch,
        now: datetime,
        settings: WatchSettings,
        *,
        figures: str | None,
        failure: str | None = None,
        decision: Decision | None = None,
        baseline: dict[str, tuple[float, ...]] | None = None,
    ) -> bool:
        dense = now < watch.started_at + timedelta(seconds=settings.dense_for_s)
        every = settings.dense_every_s if dense else settings.every_s
        next_at = min(now + timedelta(seconds=every), watch.ends_at)
        kept = Decision(None, watch.alerted, watch.missing_said, watch.regressed)
        decision = decision or kept
        done = await self._watches.checked(
            watch,
            next_check_at=next_at,
            alerted=decision.alerted,
            missing_said=decision.missing_said,
            regressed=decision.regressed,
            figures=figures,
            failure=failure,
            alert=decision.alert,
            baseline=baseline,
        )
        if done:
            self._timers.arm(watch_timer(watch.id), next_at)
        return done

    async def _end(
        self, run: Deployment, watch: Watch, *, superseded_by: str | None = None
    ) -> None:
        if _taken_back(run, watch.service):
            outcome = "rolled back"
        elif superseded_by is not None:
            outcome = f"deployment {superseded_by} changed it since"
        elif watch.alerts:
            outcome = f"{watch.alerts} alert{'s' if watch.alerts > 1 else ''}"
        else:
            outcome = "no breach"
        if watch.regressed and not _taken_back(run, watch.service):
            outcome += f"; worse than before: {', '.join(sorted(watch.regressed))}"
        if await self._watches.end(watch.id, outcome=outcome):
            self._timers.disarm(watch_timer(watch.id))
            await self._chat.show(run)

    async def post_unposted(self) -> int:
        """Post every alert recorded and not yet posted (after a check, at start-up, in the
        sweep). Returns how many were posted; a refused one stays for the next time."""
        async with self._posting:
            return await self._post_unposted()

    async def _post_unposted(self) -> int:
        posted = 0
        for alert in await self._watches.unposted():
            watch = await self._watches.get(alert.watch_id)
            run = await self._deployments.get(watch.deployment_id) if watch else None
            if watch is None or run is None:
                continue
            key = f"watch-alert:{alert.watch_id}:{alert.seq}"
            if self._firings is not None and not await self._firings.claim(key, "posted"):
                continue  # another replica posts it
            try:
                sent = await self._post(run, watch, alert)
            except UpstreamError:
                log.warning("watch alert %s/%s not posted; kept", alert.watch_id, alert.seq)
                sent = False
            except BaseException:
                if self._firings is not None:
                    await self._firings.release(key, "posted")
                raise
            if self._firings is not None:
                await (self._firings.done if sent else self._firings.release)(key, "posted")
            posted += sent
        return posted

    async def _post(self, run: Deployment, watch: Watch, alert: WatchAlert) -> bool:
        """Post one recorded alert, or find it where an earlier try posted it unseen (the bot
        died, or Slack's answer was lost). Raises UpstreamError, the alert kept unposted, when
        Slack refuses or the channel cannot be read."""
        if alert.tried_at is not None:
            found = await self._chat.find_alert(run, watch, alert)
            if found is not None:
                log.info("watch alert %s/%s was posted unseen; kept", alert.watch_id, alert.seq)
                return await self._watches.posted(alert, at=self._clock.now(), ts=found)
        rollback_id = None
        if alert.kind is AlertKind.ROLLED_BACK:
            rollback_id = await self._rolled_back(run, watch, alert)
            run = await self._deployments.get(run.id) or run
        await self._watches.trying(alert, at=self._clock.now())
        ts = await self._chat.alert(run, watch, alert, rollback_id=rollback_id)
        return await self._watches.posted(alert, at=self._clock.now(), ts=ts)

    async def _rolled_back(self, run: Deployment, watch: Watch, alert: WatchAlert) -> str | None:
        """The rollback `alert` started: the one recorded since the alert (a try before a
        restart or a refused post started it), else one started now. None when none could
        start (the alert then offers its buttons)."""
        if run.channel_id is not None:
            for rollback in await self._deployments.rollbacks_in(run.channel_id, since=alert.at):
                if rollback.reverts == run.id and rollback.state not in _NEVER_RAN:
                    return rollback.id
        if self._roll_back is None:
            return None
        # Idempotent: a deploy taken back already (its window closed) starts nothing.
        reason = f"the watch saw {watch.service} breach: {alert.figures}"
        try:
            return await self._roll_back(run, reason)
        except ChatOpsError:
            log.warning("the watch could not roll back %s", run.id, exc_info=True)
            return None

    async def arm_timers(self) -> int:
        """Arm the next check of every watch still on (start-up). Returns how many."""
        watching = await self._watches.watching()
        for w in watching:
            self._timers.arm(watch_timer(w.id), w.next_check_at)
        return len(watching)

    async def check_due(self) -> int:
        """The safety sweep: check every watch whose check is due, post what is unposted."""
        now = self._clock.now()
        due = [w for w in await self._watches.watching() if w.next_check_at <= now]
        for w in due:
            await self.check(w.id)
        await self.post_unposted()
        return len(due)


def _supersedes(newer: Watch, old: Watch) -> bool:
    """True when `newer` watches the same service here after a later run."""
    return (
        newer.environment == old.environment
        and newer.service == old.service
        and newer.started_at > old.started_at
    )


def _taken_back(run: Deployment, service: str) -> bool:
    return any(t.service == service and t.reverted_by is not None for t in run.active_targets)
