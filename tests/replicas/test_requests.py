"""Slack requests reach any replica: a request delivered to several (a replay, or Slack's
retry through another connection) is acted on once, and each click is counted once."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.deploy.views import APPROVE_ACTION
from pipeline.aws import BotoEcs
from store.deploy.models import DeploymentState
from tests.conftest import SERVICES
from tests.driver import SIGNING_SECRET, plan_cards, run_id_of, sign
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.slack_api import FakeSlack
from tests.replicas.rig import CountingEcs, MakeReplica, Replica, settle

FORM = "application/x-www-form-urlencoded"
APPROVERS = ("UAPPROVER1", "UAPPROVER2", "ULEAD1")
_ids = itertools.count(1)


def approve_click(slack: FakeSlack, run_id: str, card_ts: str, user: str) -> str:
    """The form body of one click on a card's Approve button, as Slack sends it."""
    name = f"ha-click-{next(_ids)}"
    payload: dict[str, Any] = {
        "type": "block_actions",
        "team": {"id": "T1", "domain": "sandbox"},
        "api_app_id": "A1",
        "user": {"id": user, "name": user.lower(), "team_id": "T1"},
        "channel": {"id": "CDEPLOYS", "name": "deployments"},
        "container": {"type": "message", "message_ts": card_ts, "channel_id": "CDEPLOYS"},
        "response_url": slack.response_url(name, channel="CDEPLOYS", user=user, message_ts=card_ts),
        "trigger_id": f"{name}.trigger",
        "actions": [
            {
                "action_ts": f"{time.time():.6f}",
                "action_id": APPROVE_ACTION,
                "block_id": f"deploy:{run_id}",
                "value": run_id,
                "type": "button",
            }
        ],
        "message": {"ts": card_ts, "type": "message", "text": "card"},
    }
    return urlencode({"payload": json.dumps(payload)})


async def audit_rows(replica: Replica) -> int:
    return await replica.runtime.store.call(
        lambda db: int(db.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0])
    )


async def deliver(replica: Replica, body: str, headers: dict[str, str]) -> int:
    ack = await replica.driver.send.post(body, content_type=FORM, headers=headers)
    return ack.status


async def test_clicks_spread_over_replicas_with_replays_are_each_counted_once(
    make_replica: MakeReplica, world: EcsWorld, slack: FakeSlack
) -> None:
    calls: list[tuple[str, str]] = []
    replicas = [await make_replica(f"replica-{n}", CountingEcs(BotoEcs(), calls)) for n in "abc"]
    cards: dict[str, str] = {}
    for service in SERVICES:
        await replicas[0].driver.command(f"production {service}", user="UDEV")
        run = await replicas[0].runtime.runs.get(run_id_of(plan_cards(slack)[-1]))
        assert run.message_ts is not None
        cards[run.id] = run.message_ts
    audited_before = await audit_rows(replicas[0])

    # Every approver clicks every card twice (a double click: two requests), each request
    # is delivered to all three replicas at once (two of them replays).
    deliveries = []
    distinct = 0
    for i, (run_id, user) in enumerate(itertools.product(cards, APPROVERS)):
        for _ in range(2):
            body = approve_click(slack, run_id, cards[run_id], user)
            headers = sign(body, secret=SIGNING_SECRET)
            distinct += 1
            order = replicas[i % 3 :] + replicas[: i % 3]
            deliveries += [deliver(r, body, headers) for r in order]
    statuses = await asyncio.gather(*deliveries)
    await settle(*replicas)

    assert set(statuses) == {200}
    for run_id in cards:
        run = await replicas[1].runtime.runs.get(run_id)
        assert run.state is DeploymentState.SUCCEEDED
        assert len(run.approved_by) == 2 == len(set(run.approved_by))
    assert Counter(s for call, s in calls if call == "UpdateService") == dict.fromkeys(SERVICES, 1)
    # One audit row per distinct request: the replays were acknowledged and not acted on.
    assert await audit_rows(replicas[0]) - audited_before == distinct
    seen = await replicas[2].runtime.seen.count()
    assert seen >= distinct


# The race this looks for (two replicas counting approvals at once) is in the first hundred
# clicks on each card; the rest are refusals, the bulk of the work. PostgreSQL, where it once
# counted three approvals of two, gets 1,000 clicks; SQLite, whose writers queue anyway, 300.
CLICKS = {"postgresql": 1000, "sqlite": 300}
PEOPLE = (*APPROVERS, "UDEV", "UOUTSIDER1", "UOUTSIDER2")


async def test_a_thousand_signed_clicks_over_three_replicas_with_replays_are_each_acted_on_once(
    make_replica: MakeReplica, world: EcsWorld, slack: FakeSlack, request: pytest.FixtureRequest
) -> None:
    clicks_made = CLICKS[request.node.callspec.params["database"]]
    calls: list[tuple[str, str]] = []
    replicas = [await make_replica(f"replica-{n}", CountingEcs(BotoEcs(), calls)) for n in "abc"]
    cards: dict[str, str] = {}
    for service in SERVICES:
        await replicas[0].driver.command(f"production {service}", user="UDEV")
        run = await replicas[0].runtime.runs.get(run_id_of(plan_cards(slack)[-1]))
        assert run.message_ts is not None
        cards[run.id] = run.message_ts
    audited_before = await audit_rows(replicas[0])
    answered_before = len(slack.responses)

    # 1,000 (or 300) distinct clicks on the three cards by approvers, the requester and
    # outsiders, each delivered to two replicas at once (the second a replay), a hundred clicks
    # at a time.
    clicks = [
        (run_id, user)
        for _, (run_id, user) in zip(
            range(clicks_made), itertools.cycle(itertools.product(cards, PEOPLE)), strict=False
        )
    ]
    statuses: list[int] = []
    for start in range(0, clicks_made, 100):
        deliveries = []
        for i, (run_id, user) in enumerate(clicks[start : start + 100], start):
            body = approve_click(slack, run_id, cards[run_id], user)
            headers = sign(body, secret=SIGNING_SECRET)
            first, second = replicas[i % 3], replicas[(i + 1) % 3]
            deliveries += [deliver(first, body, headers), deliver(second, body, headers)]
        statuses += await asyncio.gather(*deliveries)
    await settle(*replicas)

    assert statuses == [200] * (2 * clicks_made)
    for run_id in cards:
        run = await replicas[1].runtime.runs.get(run_id)
        assert run.state is DeploymentState.SUCCEEDED
        assert len(run.approved_by) == 2 == len(set(run.approved_by))
        assert "UDEV" not in run.approved_by
    assert Counter(s for call, s in calls if call == "UpdateService") == dict.fromkeys(SERVICES, 1)
    # Each click acted on once: one audit row each, and one private answer to each click that
    # did not count (the replays were acknowledged and nothing more).
    assert await audit_rows(replicas[0]) - audited_before == clicks_made
    refused = clicks_made - 2 * len(cards)
    assert len(slack.responses) - answered_before == refused
