"""`/deploy stats` (issue 18, point 4): the delivery figures of a known history, written through
the store's own repositories on the injected clock, equal the figures computed by hand below;
asked for as Slack asks (a signed command at the bot's endpoint), read as the user reads them.

The history (day N is N days after the clock's start, 2026-11-22 09:00 UTC; "now" is day 40,
so `30d` is the deploys that ended after day 10 09:00):

    S1  staging     api-gateway, auth-svc v2.0.0   asked d0 09:00, succeeded d0 09:10
    S2  staging     market-svc v3.1.0              asked d1 09:00, succeeded d1 09:05
    P0  production  api-gateway v1.9.0             d0 10:00-10:20: before the period
    P1  production  api-gateway, auth-svc v2.0.0   asked d12 09:00, succeeded 09:30; watched
    P2  production  market-svc v3.1.0              asked d14 09:00, succeeded 10:00; watched;
                    its watch breaches at 10:20; rollback R2 asked 10:25, succeeded 10:35
    P3  production  auth-svc v2.1.0 (hotfix)       asked d20 09:00, fails 09:20, rolled back 09:30
    S3  staging     auth-svc v2.2.0                asked d21 08:00, succeeded d21 08:10
    P4  production  auth-svc v2.2.0                asked d21 09:00, succeeded 11:00; watched;
                    a P1 "checkout errors on auth-svc" opened 12:00, resolved 13:30
    P5  production  api-gateway v2.3.0             asked d30 09:00, succeeded 09:20; watched;
                    a P3 naming it at 10:00 (not P1/P2), a P2 naming it on d32 (after the watch)
    P6  production  market-svc v3.2.0              asked d35 09:00, fails 09:15, rollback
                                                   failed 09:40
    P7  production  api-gateway v2.4.0             rejected on d36
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.deploy.stats import stats_text
from commands.deploy.replies import DeliveryStats, Failure, FailureSign
from commands.deploy.stats import LISTED
from store.db import Store
from store.deploy.models import (
    Deployment,
    DeploymentId,
    DeploymentState,
    RunKind,
    StageEvent,
    Target,
    TargetStatus,
)
from store.deploy.repository import Deployments
from store.incident.models import Incident, IncidentId, IncidentStatus
from store.incident.repository import Incidents
from store.watch import AlertKind, Watch, WatchAlert, Watches, WatchState
from tests.conftest import BotFactory
from tests.driver import BotDriver
from tests.fakes.clock import FakeClock
from tests.fakes.ecs import FakeEcs
from tests.fakes.slack_api import FakeSlack

S = DeploymentState
WATCH = timedelta(hours=24)


class History:
    """Writes runs, watches and incidents as the bot would, each at the clock's time."""

    def __init__(self, store: Store, clock: FakeClock) -> None:
        self.clock = clock
        self.start = clock.now()
        self.deployments = Deployments(store)
        self.watches = Watches(store)
        self.incidents = Incidents(store)

    def to(self, day: int, hour: int, minute: int = 0) -> datetime:
        """Move the clock forward to day `day` at hh:mm; returns that time."""
        at = self.start + timedelta(days=day, hours=hour - 9, minutes=minute)
        assert at >= self.clock.now(), "the history is written in time order"
        self.clock.advance((at - self.clock.now()).total_seconds())
        return at

    async def ask(
        self,
        run_id: str,
        environment: str,
        versions: dict[str, str],
        *,
        kind: RunKind = RunKind.DEPLOY,
        reverts: str | None = None,
    ) -> str:
        now = self.clock.now()
        await self.deployments.create(
            Deployment(
                id=DeploymentId(run_id),
                environment=environment,
                requested_by="UDEV",
                version=None,
                state=S.AWAITING_APPROVAL,
                stage=None,
                required_approvals=0,
                channel_id="CDEPLOYS",
                message_ts=None,
                created_at=now,
                updated_at=now,
                approval_due_at=None,
                started_at=None,
                finished_at=None,
                error=None,
                kind=kind,
                reverts=DeploymentId(reverts) if reverts else None,
                targets=tuple(
                    Target(
                        service=s,
                        current_version="v1.0.0",
                        target_version=v,
                        reverts=DeploymentId(reverts) if reverts else None,
                    )
                    for s, v in versions.items()
                ),
            )
        )
        assert await self.deployments.transition(
            run_id, from_states=[S.AWAITING_APPROVAL], to=S.RUNNING, at=now, started_at=now
        )
        return run_id

    async def succeed(self, run_id: str, *, watched: bool = False) -> None:
        now = self.clock.now()
        run = await self.deployments.get(run_id)
        assert run is not None
        for t in run.targets:
            await self.deployments.update_target(run_id, t.service, status=TargetStatus.HEALTHY)
        assert await self.deployments.transition(
            run_id, from_states=[S.RUNNING], to=S.SUCCEEDED, at=now, finished_at=now
        )
        if watched:
            await self.watches.start(
                [
                    Watch(
                        id=f"{run_id}:{t.service}",
                        deployment_id=run_id,
                        service=t.service,
                        environment=run.environment,
                        started_at=now,
                        ends_at=now + WATCH,
                        next_check_at=now + timedelta(minutes=1),
                        state=WatchState.WATCHING,
                    )
                    for t in run.targets
                ]
            )

    async def fail(self, run_id: str) -> None:
        """The rollout fails now and the run starts going back."""
        now = self.clock.now()
        assert await self.deployments.transition(
            run_id, from_states=[S.RUNNING], to=S.ROLLING_BACK, at=now, error="health failed"
        )
        await self.deployments.record_event(
            StageEvent(deployment_id=DeploymentId(run_id), at=now, stage="rollout", status="failed")
        )

    async def end(self, run_id: str, state: DeploymentState) -> None:
        now = self.clock.now()
        assert await self.deployments.transition(
            run_id, from_states=[S.ROLLING_BACK], to=state, at=now, finished_at=now
        )

    async def breach(self, watch_id: str) -> None:
        watch = await self.watches.get(watch_id)
        assert watch is not None
        now = self.clock.now()
        assert await self.watches.checked(
            watch,
            next_check_at=now + timedelta(minutes=1),
            alerted=frozenset({"5xx"}),
            missing_said=frozenset(),
            figures=None,
            failure=None,
            alert=WatchAlert(
                watch_id=watch_id,
                seq=0,
                at=now,
                kind=AlertKind.BREACH,
                signals=("5xx",),
                figures="{}",
            ),
        )

    async def open_incident(
        self, incident_id: str, severity: str, summary: str, service: str | None = None
    ) -> None:
        now = self.clock.now()
        await self.incidents.create(
            Incident(
                id=IncidentId(incident_id),
                severity=severity,
                summary=summary,
                service=service,
                status=IncidentStatus.INVESTIGATING,
                impact=summary,
                action=None,
                eta="Unknown",
                commander="UCMD",
                declared_by="UCMD",
                declared_in="CGENERAL",
                channel_id=f"C{incident_id.upper().replace('-', '')}",
                channel_name=incident_id,
                alert_ts=None,
                announce_channel=None,
                announce_ts=None,
                opened_at=now,
                last_update_at=now,
                next_update_due_at=None,
            )
        )

    async def resolve(self, incident_id: str) -> None:
        assert await self.incidents.resolve(
            incident_id,
            at=self.clock.now(),
            resolution="rolled forward",
            impact="checkout",
            follow_up="none",
            actor="UCMD",
        )


async def _write(h: History) -> None:
    """The history of the module docstring, in time order."""
    await h.ask("s1", "staging", {"api-gateway": "v2.0.0", "auth-svc": "v2.0.0"})
    h.to(0, 9, 10)
    await h.succeed("s1")
    h.to(0, 10)
    await h.ask("p0", "production", {"api-gateway": "v1.9.0"})
    h.to(0, 10, 20)
    await h.succeed("p0", watched=True)
    h.to(1, 9)
    await h.ask("s2", "staging", {"market-svc": "v3.1.0"})
    h.to(1, 9, 5)
    await h.succeed("s2")

    h.to(12, 9)
    await h.ask("p1", "production", {"api-gateway": "v2.0.0", "auth-svc": "v2.0.0"})
    h.to(12, 9, 30)
    await h.succeed("p1", watched=True)

    h.to(14, 9)
    await h.ask("p2", "production", {"market-svc": "v3.1.0"})
    h.to(14, 10)
    await h.succeed("p2", watched=True)
    h.to(14, 10, 20)
    await h.breach("p2:market-svc")
    h.to(14, 10, 25)
    await h.ask("r2", "production", {"market-svc": "v1.0.0"}, kind=RunKind.ROLLBACK, reverts="p2")
    h.to(14, 10, 35)
    await h.succeed("r2")
    await h.deployments.mark_reverted("p2", services=["market-svc"], by="r2", at=h.clock.now())

    h.to(20, 9)
    await h.ask("p3", "production", {"auth-svc": "v2.1.0"})
    h.to(20, 9, 20)
    await h.fail("p3")
    h.to(20, 9, 30)
    await h.end("p3", S.ROLLED_BACK)

    h.to(21, 8)
    await h.ask("s3", "staging", {"auth-svc": "v2.2.0"})
    h.to(21, 8, 10)
    await h.succeed("s3")
    h.to(21, 9)
    await h.ask("p4", "production", {"auth-svc": "v2.2.0"})
    h.to(21, 11)
    await h.succeed("p4", watched=True)
    h.to(21, 12)
    await h.open_incident("inc-checkout", "p1", "checkout errors on auth-svc")
    h.to(21, 13, 30)
    await h.resolve("inc-checkout")

    h.to(30, 9)
    await h.ask("p5", "production", {"api-gateway": "v2.3.0"})
    h.to(30, 9, 20)
    await h.succeed("p5", watched=True)
    h.to(30, 10)
    await h.open_incident("inc-slow", "p3", "slow pages", service="api-gateway")
    h.to(32, 9)
    await h.open_incident("inc-late", "p2", "api-gateway 502s", service="api-gateway")

    h.to(35, 9)
    await h.ask("p6", "production", {"market-svc": "v3.2.0"})
    h.to(35, 9, 15)
    await h.fail("p6")
    h.to(35, 9, 40)
    await h.end("p6", S.ROLLBACK_FAILED)

    h.to(36, 9)
    await h.deployments.create(
        Deployment.model_validate(
            {
                **(await h.deployments.get("p5") or pytest.fail("p5")).model_dump(),
                "id": "p7",
                "state": S.REJECTED,
                "created_at": h.clock.now(),
                "finished_at": h.clock.now(),
            }
        )
    )
    h.to(40, 9)


@pytest.fixture
async def bot(make_bot: BotFactory, fake_ecs: FakeEcs, clock: FakeClock) -> BotDriver:
    driver = await make_bot(fake_ecs)
    await _write(History(driver.runtime.store, clock))
    return driver


async def _stats(bot: BotDriver, text: str) -> str:
    """What the person reads: the figures come after the ack, privately."""
    answered = len(bot.slack.responses)

    reply = await bot.command(text)

    assert reply["status"] == 200
    assert reply["body"] == ""
    assert len(bot.slack.responses) == answered + 1
    said = bot.slack.responses[-1]
    assert said["response_type"] == "ephemeral"
    return str(said["text"])


def _said(reply: dict[str, Any]) -> str:
    """An error told in the ack, privately."""
    body = reply["body"]
    if isinstance(body, str):
        return body
    assert body.get("response_type", "ephemeral") == "ephemeral"
    return str(body["text"])


async def test_production_figures_over_30_days_are_the_hand_computed_ones(bot: BotDriver) -> None:
    said = await _stats(bot, "stats production 30d")

    assert said.splitlines()[1:] == [
        # P1, P2, P4, P5 succeeded: 4 x 7 / 30 = 0.93 a week.
        "• *Deployment frequency*: 4 deploys succeeded (0.9 a week)",
        # 20m, 30m, 1h, 2h: median (30m + 1h) / 2 = 45m; nearest rank ceil(0.9 x 4) = 4th = 2h.
        "• *Lead time* (request to success): median 45m, 90th percentile 2h",
        # P4 auth v2.2.0 50m; P1 api and auth v2.0.0 11d 23h 50m each; P2 market v3.1.0
        # 12d 23h 55m: median of the middle two = 11d 23h 50m. P5's v2.3.0 never ran in staging.
        "• *Time in `staging` before promotion*: median 11d 23h "
        "(4 versions; 1 version had not succeeded there)",
        # P2 (breach, rolled back), P3 (failed), P4 (P1 in its watch), P6 (failed) of the six
        # that ended (P1 to P6); the P3 incident and the P2 after P5's watch do not count.
        "• *Change failure rate*: 67% (4 of 6 deploys that ended)",
        # P3 10m (09:20 -> 09:30), P2 15m (breach 10:20 -> rollback 10:35), P4 1h 30m
        # (12:00 -> 13:30); P6's rollback failed. Median 15m.
        "• *Time to restore*: median 15m (3 of 4 failures restored)",
        "*Change failures*, newest first",
        "• `p6` `market-svc`: failed; not restored yet",
        "• `p4` `auth-svc`: P1 `inc-checkout`; restored in 1h 30m",
        "• `p3` `auth-svc`: failed; restored in 10m",
        "• `p2` `market-svc`: rolled back, watch breach; restored in 15m",
    ]
    assert said.startswith("*Delivery figures for `production`* · last 30 days, to <!date^")


async def test_stats_alone_means_production_over_30_days(bot: BotDriver) -> None:
    alone = await _stats(bot, "stats")

    assert alone == await _stats(bot, "stats production 30d")


async def test_one_service_counts_only_the_deploys_that_changed_it(bot: BotDriver) -> None:
    said = await _stats(bot, "stats auth-svc")

    assert "· `auth-svc` only ·" in said.splitlines()[0]
    assert said.splitlines()[1:] == [
        # P1 and P4: 2 x 7 / 30 = 0.47 a week.
        "• *Deployment frequency*: 2 deploys succeeded (0.5 a week)",
        # 30m and 2h: median 1h 15m; nearest rank ceil(1.8) = 2nd = 2h.
        "• *Lead time* (request to success): median 1h 15m, 90th percentile 2h",
        # 50m and 11d 23h 50m: median 6d 0h 20m, shown in its two largest units.
        "• *Time in `staging` before promotion*: median 6d (2 versions)",
        # P3 and P4 of P1, P3, P4.
        "• *Change failure rate*: 67% (2 of 3 deploys that ended)",
        # 10m and 1h 30m: median 50m.
        "• *Time to restore*: median 50m (2 of 2 failures restored)",
        "*Change failures*, newest first",
        "• `p4` `auth-svc`: P1 `inc-checkout`; restored in 1h 30m",
        "• `p3` `auth-svc`: failed; restored in 10m",
    ]


async def test_a_week_with_one_failed_deploy_has_no_lead_time_and_nothing_restored(
    bot: BotDriver,
) -> None:
    said = await _stats(bot, "stats 7d production")

    assert said.splitlines()[1:6] == [
        "• *Deployment frequency*: 0 deploys succeeded (0.0 a week)",
        "• *Lead time* (request to success): no deploy succeeded",
        "• *Time in `staging` before promotion*: no deploy succeeded",
        "• *Change failure rate*: 100% (1 of 1 deploy that ended)",
        "• *Time to restore*: none restored yet (0 of 1 failure restored)",
    ]


async def test_an_environment_promoted_from_nowhere_says_so(bot: BotDriver) -> None:
    said = await _stats(bot, "stats staging 90d")

    # 90 days reach back past S1 (10m), S2 (5m) and S3 (10m): 3 x 7 / 90 = 0.23 a week.
    assert said.splitlines()[1:] == [
        "• *Deployment frequency*: 3 deploys succeeded (0.2 a week)",
        "• *Lead time* (request to success): median 10m, 90th percentile 10m",
        "• *Time in the source environment*: `staging` is not promoted from another "
        "environment (no `promote_from`)",
        "• *Change failure rate*: 0% (0 of 3 deploys that ended)",
        "• *Time to restore*: no change failure",
    ]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("stats qa", ["`qa`", "`production`", "`staging`", "`7d`", "`30d`", "`90d`", "`auth-svc`"]),
        ("stats production 14d", ["`14d`", "`7d`", "`30d`", "`90d`"]),
        ("stats production web", ["`web`", "`api-gateway`", "`auth-svc`", "`market-svc`"]),
        ("stats production staging", ["`production`", "`staging`"]),
        ("stats 7d 30d", ["`7d`", "`30d`"]),
    ],
)
async def test_bad_stats_input_gets_an_ephemeral_error_naming_the_choices(
    bot: BotDriver, slack: FakeSlack, text: str, names: list[str]
) -> None:
    posted = len(slack.of("chat.postMessage"))
    answered = len(slack.responses)

    reply = await bot.command(text)

    said = _said(reply)
    for name in names:
        assert name in said
    assert "Delivery figures" not in said
    assert f"You typed `/deploy {text}`." in said
    assert len(slack.of("chat.postMessage")) == posted
    assert len(slack.responses) == answered


def test_a_long_list_of_failures_shows_the_newest_and_counts_the_older() -> None:
    at = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    failures = tuple(
        Failure(
            deployment_id=f"p{i}",
            services=("auth-svc",),
            finished_at=at,
            signs=(FailureSign.FAILED,),
            incidents=(),
            began_at=at,
            restored_at=at + timedelta(minutes=i),
        )
        for i in range(1, LISTED + 1)
    )
    stats = DeliveryStats(
        environment="production",
        days=30,
        service=None,
        since=at - timedelta(days=30),
        until=at,
        deploys=20,
        lead_median_s=60.0,
        lead_p90_s=60.0,
        source=None,
        in_source_median_s=None,
        in_source_versions=0,
        never_in_source=0,
        ended=32,
        failed=LISTED + 2,
        restored=LISTED + 2,
        restore_median_s=300.0,
        failures=failures,
    )

    said = stats_text(stats).splitlines()

    assert said[-LISTED - 2] == "*Change failures*, newest first"
    assert said[-2] == f"• `p{LISTED}` `auth-svc`: failed; restored in {LISTED}m"
    assert said[-1] == "… and 2 older"
    assert "(12 of 32 deploys that ended)" in said[4]
