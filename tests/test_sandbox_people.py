"""The sandbox's people try what its tour offers (issue 16's acceptance), on the sandbox's own
config and workspace (people, user groups) with moto and the injected clock: who may act
succeeds, everyone else is refused privately and told who can, and the log has no traceback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import boto3
import pytest

from bot.deploy.views import APPROVE_ACTION
from bot.settings import Settings
from pipeline.aws import BotoEcs
from pipeline.kernel.config import Config
from sandbox.aws import Estate, seed_buckets, seed_ecr, seed_ecs
from sandbox.config import read_example, sandbox_config
from sandbox.people import (
    APPROVERS,
    DEPLOYS,
    INCIDENTS,
    ON_CALL,
    OUTSIDER,
    PEOPLE,
    REQUESTER,
    group_members,
    users,
)
from sandbox.slack import LocalSlack
from store.deploy.models import DeploymentState, RunKind
from tests.conftest import manifest_bot_scopes
from tests.driver import BotDriver, plan_cards, run_id_of
from tests.fakes.clock import FakeClock
from tests.fakes.health import FakeHealth

APPROVER_IDS = {p.id for p in APPROVERS}
ROLLBACKER_IDS = {ON_CALL.id, APPROVERS[0].id}  # @oncall and @devops-leads


@pytest.fixture
def raw_config(health: FakeHealth) -> dict[str, Any]:
    return sandbox_config(read_example(), health_base=health.base)


@pytest.fixture
def estate(raw_config: dict[str, Any], aws: None) -> Estate:
    estate = Estate.from_config(raw_config)
    clients: dict[tuple[str, str], Any] = {}

    def client(service: str, region: str) -> Any:
        if (service, region) not in clients:
            clients[(service, region)] = boto3.client(service, region_name=region)  # type: ignore[call-overload]
        return clients[(service, region)]

    for seed in (seed_ecr, seed_ecs, seed_buckets):
        seed(estate, client)
    return estate


@pytest.fixture
def config(raw_config: dict[str, Any]) -> Config:
    return Config.model_validate(raw_config)


@pytest.fixture
async def slack() -> AsyncIterator[LocalSlack]:
    async with LocalSlack(
        users=users(), groups=group_members(), scopes=manifest_bot_scopes()
    ) as fake:
        yield fake


@pytest.fixture
async def sandbox_bot(
    settings: Settings, config: Config, clock: FakeClock, estate: Estate, slack: LocalSlack
) -> AsyncIterator[BotDriver]:
    driver = BotDriver(settings=settings, config=config, clock=clock, ecs=BotoEcs(), slack=slack)
    await driver.start()
    yield driver
    await driver.stop()


async def test_only_the_approvers_approve_and_the_others_are_told_who_can(
    sandbox_bot: BotDriver, slack: LocalSlack, caplog: pytest.LogCaptureFixture
) -> None:
    bot = sandbox_bot
    await bot.command("production all", user=REQUESTER.id, channel=DEPLOYS.id)
    run_id = run_id_of(plan_cards(slack)[-1])

    # The others first: once both approvers have approved, the card has been decided.
    for person in sorted(PEOPLE, key=lambda p: p.id in APPROVER_IDS):
        before = len(slack.responses)
        await bot.click(APPROVE_ACTION, run_id, user=person.id, channel=DEPLOYS.id)
        said = " ".join(r.get("text", "") for r in slack.responses[before:])
        if person.id in APPROVER_IDS:
            assert "Only approvers" not in said, person.name
        else:
            assert "Only approvers of `production`" in said, person.name
            assert f"<@{APPROVERS[0].id}>, <@{APPROVERS[1].id}>" in said, person.name

    assert (await bot.runtime.runs.get(run_id)).state is DeploymentState.SUCCEEDED
    assert [r for r in caplog.records if r.exc_info is not None] == []


async def test_only_the_rollbackers_roll_back_and_the_others_are_told_who_can(
    sandbox_bot: BotDriver, slack: LocalSlack, caplog: pytest.LogCaptureFixture
) -> None:
    bot = sandbox_bot
    await bot.command("production all", user=REQUESTER.id, channel=DEPLOYS.id)
    run_id = run_id_of(plan_cards(slack)[-1])
    for approver in APPROVERS:
        await bot.click(APPROVE_ACTION, run_id, user=approver.id, channel=DEPLOYS.id)
    services = iter(["auth-svc", "market-svc"])

    for person in PEOPLE:
        service = "api-gateway" if person.id not in ROLLBACKER_IDS else next(services)
        reply = await bot.command(
            f"production {service} -y", command="/rollback", user=person.id, channel=DEPLOYS.id
        )
        said = str(reply["body"])
        if person.id in ROLLBACKER_IDS:
            assert "Only the rollbackers" not in said, person.name
        else:
            assert "Only the rollbackers of `production`" in said, person.name
            assert "<!subteam^S0ONCALL>, <!subteam^S0DEVOPSLEADS>" in said, person.name

    rollbacks = [r for r in await bot.runtime.deploy.history(None) if r.kind is RunKind.ROLLBACK]
    assert sorted((r.requested_by, r.state) for r in rollbacks) == sorted(
        (p, DeploymentState.SUCCEEDED) for p in ROLLBACKER_IDS
    )
    assert OUTSIDER.id not in {r.requested_by for r in rollbacks}
    assert [r for r in caplog.records if r.exc_info is not None] == []


async def test_only_the_commander_responders_and_room_resolve_a_p1_the_others_are_told_who(
    sandbox_bot: BotDriver, slack: LocalSlack, caplog: pytest.LogCaptureFixture
) -> None:
    bot = sandbox_bot
    await bot.command(
        "p1 auth-svc login failing", command="/incident", user=ON_CALL.id, channel=INCIDENTS.id
    )
    (incident,) = await bot.runtime.incident.list_open()

    for person in sorted(PEOPLE, key=lambda p: p.id == ON_CALL.id):
        before = len(slack.responses)
        reply = await bot.command(
            "resolve rolled back",
            command="/incident",
            user=person.id,
            channel=incident.channel_id,
        )
        said = str(reply["body"]) + str(slack.responses[before:])
        if person.id == ON_CALL.id:
            assert "Nothing was changed" not in said
        else:
            assert "Only " in said, person.name
            assert "Nothing was changed" in said, person.name
            assert f"<@{ON_CALL.id}>" in said, person.name

    assert await bot.runtime.incident.list_open() == []
    assert [r for r in caplog.records if r.exc_info is not None] == []
