"""The Slack notifier on its own: the card always ends on the run's latest state in the store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.deploy.adapter import SlackNotifier
from bot.slack import SlackGateway
from pipeline.kernel.config import Config
from pipeline.tasks import OwnedTasks
from store.db import Store
from store.deploy.cards import CardViews
from store.deploy.models import Deployment, DeploymentId, DeploymentState, Target
from store.deploy.repository import Deployments
from tests.fakes.clock import FakeClock
from tests.fakes.slack_api import FakeSlack

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def _run(state: DeploymentState, *, updated_at: datetime, ts: str | None = None) -> Deployment:
    return Deployment(
        id=DeploymentId("1700000000-abc123"),
        environment="production",
        requested_by="UDEV",
        version=None,
        state=state,
        stage=None,
        required_approvals=2,
        channel_id="CDEPLOYS",
        message_ts=ts,
        created_at=T0,
        updated_at=updated_at,
        approval_due_at=None,
        started_at=None,
        finished_at=None,
        error=None,
        targets=(Target(service="api-gateway", current_version="v1.2.0", target_version="v1.3.0"),),
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "bot.db")
    yield s
    await s.close()


async def test_a_stale_redraw_arriving_late_does_not_overwrite_a_newer_card(
    slack: FakeSlack, config: Config, store: Store
) -> None:
    deployments = Deployments(store)
    tasks = OwnedTasks()
    notifier = SlackNotifier(
        SlackGateway(AsyncWebClient(token="xoxb-test", base_url=slack.api_url)),
        config,
        deployments=deployments,
        cards=CardViews(store),
        clock=FakeClock(T0),
        tasks=tasks,
    )
    awaiting = _run(DeploymentState.AWAITING_APPROVAL, updated_at=T0)
    await deployments.create(awaiting)
    ts = await notifier.post_card(awaiting)
    await deployments.set_fields(awaiting.id, at=T0, message_ts=ts)
    later = T0 + timedelta(seconds=1)
    await deployments.transition(
        awaiting.id,
        from_states=[DeploymentState.AWAITING_APPROVAL],
        to=DeploymentState.RUNNING,
        at=later,
    )
    running = _run(DeploymentState.RUNNING, updated_at=later, ts=ts)
    approved = _run(DeploymentState.APPROVED, updated_at=T0, ts=ts)

    await notifier.redraw(running)
    await notifier.redraw(approved)
    await tasks.wait_idle()

    shown = slack.workspace.message("CDEPLOYS", ts)
    assert "*Deploying:*" in str(shown.blocks)
    assert len(slack.of("chat.update")) == 1
