"""kill -9 mid-watch: the real `chatops-bot serve` is killed with SIGKILL while it watches a
production deploy whose service breaches, then started again on the same database; the alert
is in the deploy's thread and in its channel exactly once (issue 18, point 5).

The watch reads one-minute CloudWatch periods, so no test waits for minutes to pass: the
database is seeded, through the product's own repositories, with a production deploy that
finished ten minutes ago and its watch, and moto's CloudWatch holds those ten minutes of a 20%
5xx ratio. The first check, at start-up, sees a breach sustained for longer than its five
minutes. The process is stopped where a stand-in is made to hang (as in the crash matrix):
CloudWatch's answer held (before the breach is detected), Slack taking the alert and answering
late (the post in flight), or Slack taking the automatic rollback's card and answering late
(the rollback starting).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from bot.deploy.adapter import CARD_EVENT
from store.db import Store
from store.deploy.models import Deployment, DeploymentId, DeploymentState, Target, TargetStatus
from store.deploy.repository import Deployments
from store.watch import Watch, Watches, WatchState
from tests.bot.test_watch import LB, TG, TG_DIMENSION
from tests.fakes.aws_proxy import EcsProxy
from tests.fakes.ecs_world import REGION, REPO, EcsWorld
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack
from tests.test_crash_matrix import CHANNEL, NEVER_S, SECRET, SERVICE, TOKEN, BotProcess, Db

pytestmark = pytest.mark.slow

RUN_ID = "d-watched"
WATCH_ID = f"{RUN_ID}:{SERVICE}"
STEP_BACKSTOP_S = 15.0
FINAL_BACKSTOP_S = 30.0
# The deploy finished this long before the bot starts: longer than the 5xx duration (5m).
WATCHED_FOR = timedelta(minutes=10)
BREACHED = "breached after deployment"
MINUTE = timedelta(minutes=1)


@dataclass
class Rig:
    slack: FakeSlack
    proxy: EcsProxy
    health: FakeHealth
    world: EcsWorld
    moto: str
    db: Db
    config: Path
    old_td: str = ""
    new_td: str = ""


def _config(rig: Rig, *, rollback: bool) -> None:
    rig.config.write_text(
        f"""
[environments.production]
cluster = "skillancer-production"
region = "{REGION}"
ecr_check = false

[environments.production.health]
retries = 2
interval = "50ms"
timeout = "2s"

[environments.production.rollout]
stable_timeout = "30s"
poll_interval = "50ms"

[environments.production.watch]
period = "2h"
compare = false
rollback = {str(rollback).lower()}

[environments.production.watch.target_groups.{SERVICE}]
load_balancer = "{LB}"
target_group = "{TG}"

[services.{SERVICE}]
image = "{REPO}/{SERVICE}"
health_url = {{ production = "{rig.health.url(SERVICE)}" }}
""",
        encoding="utf-8",
    )


def _deployed(world: EcsWorld) -> tuple[str, str]:
    """Production api-gateway as the seeded deploy left it: v1.4.0, after v1.3.0."""
    old = world.add_service("production", SERVICE, "v1.3.0")
    new = world.client.register_task_definition(
        family=f"production-{SERVICE}",
        containerDefinitions=[
            {"name": SERVICE, "image": f"{REPO}/{SERVICE}:v1.4.0", "memory": 512, "essential": True}
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    world.client.update_service(
        cluster=world.cluster("production"), service=SERVICE, taskDefinition=new
    )
    return old, str(new)


def _breaching_minutes(moto: str, *, since: datetime, until: datetime) -> None:
    """Every minute of [since, until]: 1000 requests, 200 of them 5xx; healthy otherwise."""
    cloudwatch = boto3.client("cloudwatch", region_name=REGION, endpoint_url=moto)
    alb = [{"Name": "TargetGroup", "Value": TG_DIMENSION}, {"Name": "LoadBalancer", "Value": LB}]
    ecs = [
        {"Name": "ClusterName", "Value": "skillancer-production"},
        {"Name": "ServiceName", "Value": SERVICE},
    ]
    first = since.replace(second=0, microsecond=0)
    minutes = [first + timedelta(minutes=i) for i in range(int((until - first) / MINUTE) + 1)]
    for namespace, dims, series in (
        (
            "AWS/ApplicationELB",
            alb,
            {"RequestCount": 1000, "HTTPCode_Target_5XX_Count": 200, "TargetResponseTime": 0.2},
        ),
        ("AWS/ECS", ecs, {"CPUUtilization": 30, "MemoryUtilization": 40}),
    ):
        cloudwatch.put_metric_data(
            Namespace=namespace,
            MetricData=[
                {"MetricName": name, "Dimensions": dims, "Timestamp": at, "Value": value}
                for name, value in series.items()
                for at in minutes
            ],
        )


async def _seed(rig: Rig) -> None:
    """The deploy (its card in the channel) and its watch, as the bot recorded them before it
    stopped: the watch's next check is due."""
    now = datetime.now(UTC)
    finished = now - WATCHED_FOR
    card = rig.slack.workspace.post(
        CHANNEL,
        user=rig.slack.workspace.bot_user,
        text=f"Deployment {RUN_ID}",
        metadata={"event_type": CARD_EVENT, "event_payload": {"key": RUN_ID}},
    )
    run = Deployment(
        id=DeploymentId(RUN_ID),
        environment="production",
        requested_by="UDEV",
        version="v1.4.0",
        state=DeploymentState.SUCCEEDED,
        stage=None,
        required_approvals=0,
        channel_id=CHANNEL,
        message_ts=card.ts,
        created_at=finished - timedelta(minutes=2),
        updated_at=finished,
        approval_due_at=None,
        started_at=finished - timedelta(minutes=1),
        finished_at=finished,
        error=None,
        rollback_deadline=now + timedelta(hours=1),
        targets=(
            Target(
                service=SERVICE,
                current_version="v1.3.0",
                target_version="v1.4.0",
                previous_task_def=rig.old_td,
                new_task_def=rig.new_td,
                status=TargetStatus.HEALTHY,
            ),
        ),
    )
    store = await Store.open(rig.db.path)
    try:
        await Deployments(store).create(run)
        await Watches(store).start(
            [
                Watch(
                    id=WATCH_ID,
                    deployment_id=run.id,
                    service=SERVICE,
                    environment="production",
                    started_at=finished,
                    ends_at=finished + timedelta(hours=2),
                    next_check_at=now - timedelta(seconds=30),
                    state=WatchState.WATCHING,
                )
            ]
        )
    finally:
        await store.close()
    _breaching_minutes(rig.moto, since=finished, until=now)


@pytest.fixture
def rig(
    slack: FakeSlack, ecs_proxy: EcsProxy, health: FakeHealth, moto_server: str, tmp_path: Path
) -> Rig:
    world = EcsWorld(endpoint_url=moto_server)
    old, new = _deployed(world)
    return Rig(
        slack=slack,
        proxy=ecs_proxy,
        health=health,
        world=world,
        moto=moto_server,
        db=Db(tmp_path / "bot.db"),
        config=tmp_path / "chatops.toml",
        old_td=old,
        new_td=new,
    )


def _env(rig: Rig) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],  # noqa: TID251 - the child needs a PATH
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": rig.slack.api_url,
        "CHATOPS_CONFIG": str(rig.config),
        "CHATOPS_DB": str(rig.db.path),
        "CHATOPS_HOST": "127.0.0.1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": rig.proxy.url,
    }


def _alerts_in_thread(rig: Rig) -> list[str]:
    card = rig.db.query("SELECT message_ts FROM deployments WHERE id = ?", (RUN_ID,))[0][0]
    return [m.ts for m in rig.slack.workspace.replies(CHANNEL, card) if BREACHED in m.text]


def _alerts_in_channel(rig: Rig) -> list[str]:
    return [m.ts for m in rig.slack.workspace.history(CHANNEL) if BREACHED in m.text]


def _stored(rig: Rig) -> list[tuple[str | None, str | None, str | None]]:
    """(tried_at, posted_at, ts) of each alert recorded."""
    return [
        (tried, posted, ts)
        for tried, posted, ts in rig.db.query(
            "SELECT tried_at, posted_at, ts FROM watch_alerts ORDER BY seq"
        )
    ]


async def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + FINAL_BACKSTOP_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never saw {what}")
        await asyncio.sleep(0.05)


@dataclass(frozen=True)
class Killed:
    """The bot started again, and what the database held when the first one was killed."""

    bot: BotProcess
    alerts: list[tuple[str | None, str | None, str | None]]
    rollbacks: list[tuple[str, str]]


async def _killed_then_restarted(
    rig: Rig, reached: Callable[[], Awaitable[None]], *, lift: Callable[[], None]
) -> Killed:
    """Start the bot, kill it with SIGKILL once `reached` returns, lift the fault, start it
    again on the same database (it is left running; the caller stops it)."""
    bot = BotProcess(_env(rig), rig.config.parent, rig.config.parent / "bot.log")
    # The first check is due at start-up, so the first process is killed before it is ready.
    await bot.start(healthy=False)
    try:
        await asyncio.wait_for(reached(), STEP_BACKSTOP_S)
    finally:
        await bot.kill()
    alerts = _stored(rig)
    rollbacks = rig.db.query("SELECT id, state FROM deployments WHERE kind = 'rollback'")
    lift()
    await bot.start()
    return Killed(bot, alerts, [(i, s) for i, s in rollbacks])


async def test_a_bot_killed_mid_watch_before_the_breach_is_seen_alerts_once_after(
    rig: Rig,
) -> None:
    _config(rig, rollback=False)
    await _seed(rig)
    hold = rig.proxy.hold("GetMetricData")

    async def reached() -> None:
        await hold.reached.wait()

    killed = await _killed_then_restarted(rig, reached, lift=hold.release)
    try:
        await _until(lambda: bool(_alerts_in_thread(rig)), "the alert in the thread")
        await _until(lambda: _stored(rig)[0][1] is not None, "the alert marked posted")
    finally:
        await killed.bot.stop()

    assert killed.alerts == []
    thread, channel = _alerts_in_thread(rig), _alerts_in_channel(rig)
    assert len(thread) == 1
    assert channel == thread, "one message: in the thread, broadcast to the channel"
    assert _stored(rig)[0][2] == thread[0]
    assert "5xx 20.0%" in rig.slack.workspace.message(CHANNEL, thread[0]).text
    card_ts = rig.db.query("SELECT message_ts FROM deployments")[0][0]
    assert "watching until" in str(rig.slack.workspace.message(CHANNEL, card_ts).blocks)
    assert TOKEN not in (rig.config.parent / "bot.log").read_text(encoding="utf-8")
    assert SECRET not in (rig.config.parent / "bot.log").read_text(encoding="utf-8")


async def test_a_bot_killed_while_its_alert_is_posted_finds_it_and_posts_none_again(
    rig: Rig,
) -> None:
    _config(rig, rollback=False)
    await _seed(rig)
    rig.slack.answer_late("chat.postMessage", NEVER_S)

    async def reached() -> None:
        # Slack has taken the alert; the bot is still waiting for its answer.
        await _until(lambda: bool(_alerts_in_channel(rig)), "the alert in the channel")

    killed = await _killed_then_restarted(rig, reached, lift=lambda: None)
    try:
        await _until(lambda: _stored(rig)[0][1] is not None, "the alert marked posted")
    finally:
        await killed.bot.stop()

    [(tried, posted, _)] = killed.alerts
    assert tried is not None
    assert posted is None
    thread, channel = _alerts_in_thread(rig), _alerts_in_channel(rig)
    assert len(thread) == 1
    assert channel == thread, "one message: in the thread, broadcast to the channel"
    assert _stored(rig)[0][2] == thread[0]
    assert len([c for c in rig.slack.of("chat.postMessage") if BREACHED in c["text"]]) == 1


async def test_a_bot_killed_while_the_watch_starts_its_rollback_rolls_back_once(
    rig: Rig,
) -> None:
    """Slack took the rollback's card and the bot died before it heard back: the rollback
    recorded then is the one that runs, and the alert names it."""
    _config(rig, rollback=True)
    await _seed(rig)
    rig.slack.answer_late("chat.postMessage", NEVER_S)

    async def reached() -> None:
        await _until(lambda: len(rig.slack.workspace.history(CHANNEL)) > 1, "the rollback card")

    killed = await _killed_then_restarted(rig, reached, lift=lambda: None)
    try:
        await _until(
            lambda: (
                ("succeeded",)
                in rig.db.query("SELECT state FROM deployments WHERE kind = 'rollback'")
                and bool(_alerts_in_thread(rig))
                and _stored(rig)[0][1] is not None
            ),
            "the rollback succeed and the alert posted",
        )
    finally:
        await killed.bot.stop()

    [(rollback_id, state_at_kill)] = killed.rollbacks
    assert state_at_kill == "awaiting_approval"
    assert rig.db.query("SELECT id FROM deployments WHERE kind = 'rollback'") == [(rollback_id,)]
    assert rig.db.query("SELECT reverted_by FROM deployments WHERE id = ?", (RUN_ID,)) == [
        (rollback_id,)
    ]
    assert rig.world.task_definition("production", SERVICE) == rig.old_td
    assert rig.proxy.count("UpdateService") == 1
    thread, channel = _alerts_in_thread(rig), _alerts_in_channel(rig)
    assert len(thread) == 1
    assert channel == thread, "one message: in the thread, broadcast to the channel"
    text = rig.slack.workspace.message(CHANNEL, thread[0]).text
    assert f"rolls it back at once (rollback `{rollback_id}`)" in text
    cards = [
        m
        for m in rig.slack.workspace.channel(CHANNEL).messages
        if (m.metadata or {}).get("event_type") == CARD_EVENT
    ]
    assert len(cards) == 2, "the deploy's card and the one rollback's"
