"""Every deploy card converges on its run in the store, however Slack fails the updates:
HTTP 500s, rate limits beyond the client's own retries, refusals fixed later, and restarts."""

from __future__ import annotations

import pytest

from bot.deploy.adapter import RETRY_FIRST_S
from store.deploy.models import Deployment, DeploymentState
from tests.conftest import STAGING_PATH
from tests.driver import BotDriver, plan_cards, run_id_of
from tests.fakes.clock import FakeClock
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack

# Staging's health URLs carry STAGING_PATH; this is the last check of a staging deploy.
LAST_PATH = STAGING_PATH + "/api/v1/status"


def shown(slack: FakeSlack, run: Deployment) -> str:
    """What the card of `run` shows in the channel now (not what was last sent)."""
    assert run.channel_id is not None
    assert run.message_ts is not None
    return str(slack.workspace.message(run.channel_id, run.message_ts).blocks)


def before_the_end(health: FakeHealth, act: object) -> None:
    """Do `act()` when the run's last health check is answered, i.e. just before it ends."""

    def status_for(service: str, path: str) -> int:
        if path == LAST_PATH:
            act()  # type: ignore[operator]
        return 200

    health.status_for = status_for


def card_ts(slack: FakeSlack) -> str:
    """The ts of the run's card (the only top-level message in the deploy channel)."""
    (card,) = [m for m in slack.workspace.history("CDEPLOYS") if m.thread_ts is None]
    return card.ts


def update_statuses(slack: FakeSlack) -> list[int]:
    """The answers to the updates of the card itself (its thread's grouped replies are
    updated too, in an order the test does not fix)."""
    ts = card_ts(slack)
    return [c.status for c in slack.calls if c.method == "chat.update" and c.args.get("ts") == ts]


async def _staging_run(bot: BotDriver, slack: FakeSlack) -> Deployment:
    await bot.command("staging api-gateway v1.4.0", user="UDEV")
    return await bot.runtime.runs.get(run_id_of(plan_cards(slack)[0]))


async def test_one_http_500_on_the_final_update_is_retried_until_the_card_shows_success(
    bot: BotDriver, slack: FakeSlack, health: FakeHealth, clock: FakeClock
) -> None:
    before_the_end(health, lambda: slack.http_error_next("chat.update", 500, ts=card_ts(slack)))

    run = await _staging_run(bot, slack)

    assert run.state is DeploymentState.SUCCEEDED
    assert "✅ Staging deployment successful" in shown(slack, run)
    statuses = update_statuses(slack)
    assert statuses.count(500) == 1
    assert statuses[statuses.index(500) + 1] == 200  # the retry, after the first back-off
    assert RETRY_FIRST_S in clock.slept


async def test_repeated_failures_back_off_before_the_card_catches_up(
    bot: BotDriver, slack: FakeSlack, health: FakeHealth, clock: FakeClock
) -> None:
    before_the_end(
        health, lambda: slack.http_error_next("chat.update", 503, times=3, ts=card_ts(slack))
    )

    run = await _staging_run(bot, slack)

    assert "✅ Staging deployment successful" in shown(slack, run)
    statuses = update_statuses(slack)
    first = statuses.index(503)
    assert statuses[first : first + 4] == [503, 503, 503, 200]
    assert clock.slept[-3:] == [2.0, 4.0, 8.0]


@pytest.mark.slow
async def test_a_rate_limit_beyond_the_clients_retries_waits_what_slack_asks_then_converges(
    bot: BotDriver, slack: FakeSlack, health: FakeHealth, clock: FakeClock
) -> None:
    """The client retries a 429 twice by itself (about a second of real time); the third
    answer's Retry-After is then waited out on the bot's clock."""

    def rate_limit() -> None:
        slack.rate_limit_next("chat.update", retry_after=0, times=2)
        slack.rate_limit_next("chat.update", retry_after=30)

    before_the_end(health, rate_limit)

    run = await _staging_run(bot, slack)

    assert "✅ Staging deployment successful" in shown(slack, run)
    assert update_statuses(slack)[-4:] == [429, 429, 429, 200]
    assert clock.slept[-1] == 30.0


async def test_a_card_left_behind_is_redrawn_when_the_bot_starts(
    bot: BotDriver, slack: FakeSlack, health: FakeHealth
) -> None:
    """Slack refused the final update (a permission was missing); fixed, the bot restarts."""
    granted = slack.scopes
    assert granted is not None
    before_the_end(health, lambda: setattr(slack, "scopes", granted - {"chat:write"}))
    run = await _staging_run(bot, slack)
    assert "*Deploying:*" in shown(slack, run)

    slack.scopes = granted
    await bot.restart()

    assert "✅ Staging deployment successful" in shown(slack, run)


async def test_the_sweep_redraws_a_card_left_behind_without_a_restart(
    bot: BotDriver, slack: FakeSlack, health: FakeHealth
) -> None:
    granted = slack.scopes
    assert granted is not None
    before_the_end(health, lambda: setattr(slack, "scopes", granted - {"chat:write"}))
    run = await _staging_run(bot, slack)
    slack.scopes = granted

    await bot.runtime.sweep()
    await bot.settle()

    assert "✅ Staging deployment successful" in shown(slack, run)


async def test_cards_already_in_step_are_not_updated_again_at_start_up(
    bot: BotDriver, slack: FakeSlack
) -> None:
    await _staging_run(bot, slack)
    updates = len(slack.of("chat.update"))

    await bot.restart()

    assert len(slack.of("chat.update")) == updates


async def test_a_card_of_a_run_that_ended_over_a_day_ago_is_left_alone(
    bot: BotDriver, slack: FakeSlack, health: FakeHealth, clock: FakeClock
) -> None:
    granted = slack.scopes
    assert granted is not None
    before_the_end(health, lambda: setattr(slack, "scopes", granted - {"chat:write"}))
    run = await _staging_run(bot, slack)
    # The rollback window's close redraws the card too; let it fail the same way.
    clock.advance(61 * 60)
    await bot.runtime.timers.run_due()
    await bot.settle()
    slack.scopes = granted
    clock.advance(25 * 3600)

    await bot.restart()

    assert "*Deploying:*" in shown(slack, run)
