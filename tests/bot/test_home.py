"""The App Home through signed requests, the strict local Slack and moto: each viewer's Home
is published when they open it and again when something changes, shows the approvals waiting
for that viewer with the card's buttons, and a click on the Home tab acts as a click on the
card does."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.deploy.views import APPROVE_ACTION, REJECT_ACTION
from bot.home import home_view
from commands.home import Dashboard, EnvironmentHome
from pipeline.kernel.config.gates import Freeze
from tests.driver import BotDriver, plan_cards, run_id_of
from tests.fakes.slack_api import FakeSlack

APPROVER = "UAPPROVER1"
OUTSIDER = "UDANA"
REQUESTER = "UREQUESTER"


def home(slack: FakeSlack, user: str) -> dict[str, Any]:
    """The Home view Slack holds for `user` (what they see on the tab)."""
    return slack.workspace.home_views[user].view


def home_text(slack: FakeSlack, user: str) -> str:
    return str(home(slack, user)["blocks"])


def buttons(slack: FakeSlack, user: str) -> list[tuple[str, str]]:
    """(action_id, value) of every button on `user`'s Home."""
    return [
        (e["action_id"], e["value"])
        for b in home(slack, user)["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    ]


async def open_home(bot: BotDriver, *users: str) -> None:
    for user in users:
        ack = await bot.send.app_home_opened(user)
        assert ack.status == 200
    await bot.settle()


async def click_on_home(bot: BotDriver, user: str, action_id: str, value: str) -> int:
    ack = await bot.send.home_action(
        {"action_id": action_id, "block_id": f"deploy:{value}", "value": value, "type": "button"},
        user=user,
    )
    await bot.settle()
    return ack.status


async def request_production(bot: BotDriver, slack: FakeSlack) -> str:
    await bot.command("production api-gateway", user=REQUESTER)
    return run_id_of(plan_cards(slack)[-1])


async def test_opening_the_home_tab_publishes_it_to_that_person(
    bot: BotDriver, slack: FakeSlack
) -> None:
    await open_home(bot, OUTSIDER)

    assert [c["user_id"] for c in slack.of("views.publish")] == [OUTSIDER]
    assert home(slack, OUTSIDER)["type"] == "home"
    assert "production" in home_text(slack, OUTSIDER)


async def test_two_viewers_see_only_the_approvals_waiting_for_them(
    bot: BotDriver, slack: FakeSlack
) -> None:
    await open_home(bot, APPROVER, OUTSIDER)

    run_id = await request_production(bot, slack)

    assert buttons(slack, APPROVER) == [(APPROVE_ACTION, run_id), (REJECT_ACTION, run_id)]
    assert "Waiting for you (1)" in home_text(slack, APPROVER)
    assert buttons(slack, OUTSIDER) == []
    assert "Awaiting other approvers" in home_text(slack, OUTSIDER)
    assert run_id in home_text(slack, OUTSIDER)


async def test_approving_from_the_home_tab_counts_and_updates_the_card(
    bot: BotDriver, slack: FakeSlack
) -> None:
    await open_home(bot, APPROVER)
    run_id = await request_production(bot, slack)

    status = await click_on_home(bot, APPROVER, APPROVE_ACTION, run_id)

    assert status == 200
    run = await bot.runtime.runs.get(run_id)
    assert run.approved_by == (APPROVER,)
    card = slack.workspace.message("CDEPLOYS", run.message_ts or "")
    assert "approvals 1/2" in str(card.blocks)
    assert buttons(slack, APPROVER) == []


async def test_a_click_on_the_home_tab_by_someone_who_may_not_approve_names_who_can(
    bot: BotDriver, slack: FakeSlack
) -> None:
    await open_home(bot, OUTSIDER)
    run_id = await request_production(bot, slack)

    await click_on_home(bot, OUTSIDER, APPROVE_ACTION, run_id)

    assert (await bot.runtime.runs.get(run_id)).approved_by == ()
    assert (
        "Only approvers of `production` can approve or reject: <@UAPPROVER1>, <@UAPPROVER2>, "
        "<!subteam^S0LEADS>. Your click changed nothing." in home_text(slack, OUTSIDER)
    )


async def test_a_burst_of_changes_makes_one_publish_per_viewer(
    bot: BotDriver, slack: FakeSlack
) -> None:
    await open_home(bot, APPROVER, OUTSIDER)
    await bot.command("lock production release train", user=APPROVER)
    before = len(slack.of("views.publish"))

    for _ in range(20):
        bot.runtime.home.changed()
    await bot.command("unlock production", user=APPROVER)

    publishes = slack.of("views.publish")[before:]
    assert sorted(c["user_id"] for c in publishes) == [APPROVER, OUTSIDER]
    assert [c.error for c in slack.calls if c.method == "views.publish"] == [None] * len(
        slack.of("views.publish")
    )


async def test_an_unchanged_home_is_not_published_again(bot: BotDriver, slack: FakeSlack) -> None:
    await open_home(bot, OUTSIDER)

    await open_home(bot, OUTSIDER)
    await bot.runtime.sweep()
    await bot.settle()

    assert len(slack.of("views.publish")) == 1


async def test_a_home_slack_no_longer_shows_is_published_again_when_opened(
    bot: BotDriver, slack: FakeSlack
) -> None:
    await open_home(bot, OUTSIDER)
    slack.workspace.home_views.pop(OUTSIDER)  # the app was reinstalled: Slack shows no Home

    await open_home(bot, OUTSIDER)

    assert len(slack.of("views.publish")) == 2
    assert OUTSIDER in slack.workspace.home_views


async def test_viewers_are_remembered_across_a_restart(bot: BotDriver, slack: FakeSlack) -> None:
    await open_home(bot, OUTSIDER)

    await bot.restart()
    await bot.command("lock production release train", user=APPROVER)

    assert "Locked by <@UAPPROVER1>" in home_text(slack, OUTSIDER)


async def test_a_home_not_opened_for_a_month_is_no_longer_updated_until_opened_again(
    bot: BotDriver, slack: FakeSlack
) -> None:
    await open_home(bot, OUTSIDER)
    bot.clock.advance(20 * 86400)
    await open_home(bot, APPROVER)
    bot.clock.advance(11 * 86400)  # OUTSIDER last opened it 31 days ago
    await bot.runtime.sweep()
    await bot.settle()
    before = len(slack.of("views.publish"))

    await bot.command("lock production release train", user=APPROVER)

    assert [c["user_id"] for c in slack.of("views.publish")[before:]] == [APPROVER]
    assert "Locked by" not in home_text(slack, OUTSIDER)
    await open_home(bot, OUTSIDER)
    assert "Locked by <@UAPPROVER1>" in home_text(slack, OUTSIDER)


async def test_opening_the_home_again_keeps_its_updates_coming(
    bot: BotDriver, slack: FakeSlack
) -> None:
    await open_home(bot, OUTSIDER)
    bot.clock.advance(29 * 86400)
    await open_home(bot, OUTSIDER)  # opened again: another 30 days of updates
    bot.clock.advance(29 * 86400)
    await bot.restart()

    await bot.command("lock production release train", user=APPROVER)

    assert "Locked by <@UAPPROVER1>" in home_text(slack, OUTSIDER)


async def test_typed_text_on_the_home_tab_is_escaped(bot: BotDriver, slack: FakeSlack) -> None:
    await open_home(bot, OUTSIDER)

    await bot.command("lock production <!channel> & <https://evil.example|ok>", user=APPROVER)

    text = home_text(slack, OUTSIDER)
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|ok&gt;" in text
    assert "<!channel>" not in text


@pytest.mark.parametrize("requests", [30])
async def test_many_waiting_requests_stay_inside_a_home_tabs_limits(
    bot: BotDriver, slack: FakeSlack, requests: int
) -> None:
    await open_home(bot, APPROVER)

    for _ in range(requests):
        await bot.command("production api-gateway v1.3.0", user=REQUESTER)

    view = home(slack, APPROVER)
    assert len(view["blocks"]) <= 100
    assert "Waiting for you (30)" in str(view["blocks"])
    assert "… and 10 more" in str(view["blocks"])
    assert [c.error for c in slack.calls if c.method == "views.publish"] == [None] * len(
        slack.of("views.publish")
    )


async def test_a_viewers_home_is_published_within_slacks_per_user_rate(
    bot: BotDriver, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changes keep coming (a lock taken and given back 15 times): the viewer's Home follows,
    but never more than 10 times a minute, nor twice within 2 seconds."""
    published_at = []
    publish = slack.workspace.publish_home

    def record(user_id: str, view: dict[str, Any], *, hash_: str | None) -> Any:
        published_at.append(bot.clock.now())
        return publish(user_id, view, hash_=hash_)

    monkeypatch.setattr(slack.workspace, "publish_home", record)
    await open_home(bot, OUTSIDER)

    for _ in range(15):
        await bot.command("lock production release train", user=APPROVER)
        await bot.command("unlock production", user=APPROVER)

    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(published_at)]
    per_minute = [
        sum(1 for t in published_at if start <= t < start + timedelta(minutes=1))
        for start in published_at
    ]
    assert len(published_at) > 10
    assert min(gaps) >= 2
    assert max(per_minute) <= 10
    assert "Not locked" in home_text(slack, OUTSIDER)


async def test_a_rate_limited_publish_is_tried_again(bot: BotDriver, slack: FakeSlack) -> None:
    slack.fail_next("views.publish", "ratelimited")

    await open_home(bot, OUTSIDER)

    assert [c.error for c in slack.calls if c.method == "views.publish"] == ["ratelimited", None]
    assert "production" in home_text(slack, OUTSIDER)


async def test_an_open_incident_shows_under_its_environment_with_its_war_room(
    bot: BotDriver, slack: FakeSlack
) -> None:
    await open_home(bot, OUTSIDER)

    await bot.command(
        "p1 auth-svc <!here> login failing", command="/incident", user="UCMD", channel="CGENERAL"
    )

    [incident] = await bot.runtime.incident.list_open()
    production = home_text(slack, OUTSIDER).split("'production'")[-1]
    assert "*P1* auth-svc &lt;!here&gt; login failing" in production
    assert f"war room <#{incident.channel_id}>" in production
    assert "commander <@UCMD>" in production
    assert "freezes deploys of `auth-svc`" in production


async def test_a_deploy_that_succeeded_shows_its_rollback_window(
    bot: BotDriver, slack: FakeSlack
) -> None:
    await open_home(bot, OUTSIDER)

    await bot.command("staging api-gateway v1.4.0", user=REQUESTER)

    [run] = await bot.runtime.deploy.history("staging")
    assert run.rollback_deadline is not None
    staging = home_text(slack, OUTSIDER).split("'production'")[0]
    assert f"Rollback window of `{run.id}` (`api-gateway`) open until <!date^" in staging
    assert "Nothing running." in staging


def quiet_environment(name: str, **changes: Any) -> EnvironmentHome:
    base: dict[str, Any] = {
        "name": name,
        "confirm_buttons": True,
        "canary_stages": 3,
        "running": (),
        "windows": (),
        "lock": None,
        "freeze": None,
        "open_now": True,
        "next_open": None,
        "deploy_windows": (),
        "timezone": "Europe/Berlin",
        "incidents": (),
        "frozen_by": {},
        "waiting_for_you": (),
        "awaiting_others": (),
    }
    return EnvironmentHome(**{**base, **changes})


def drawn(env: EnvironmentHome) -> str:
    dashboard = Dashboard(
        viewer=OUTSIDER, now=datetime(2026, 12, 24, tzinfo=UTC), environments=(env,)
    )
    return str(home_view(dashboard)["blocks"])


def test_a_freeze_in_force_is_shown_with_its_reason_escaped() -> None:
    freeze = Freeze.model_validate(
        {"from": "2026-12-23", "to": "2026-12-27", "reason": "<!here> & rest"}
    )

    text = drawn(quiet_environment("production", freeze=freeze))

    assert "🧊 *Frozen* 2026-12-23 to 2026-12-27 (Europe/Berlin): &lt;!here&gt; &amp; rest" in text


def test_outside_the_deploy_windows_the_next_one_is_shown() -> None:
    opens = datetime(2026, 12, 28, 9, 0, tzinfo=UTC)
    env = quiet_environment(
        "production", open_now=False, next_open=opens, deploy_windows=("Mon-Thu 09:00-16:00",)
    )

    text = drawn(env)

    assert "Outside the deploy windows (Mon-Thu 09:00-16:00, Europe/Berlin)" in text
    assert f"the next opens <!date^{int(opens.timestamp())}^" in text


async def test_approvers_in_a_user_group_see_the_buttons_and_slack_is_asked_once_a_minute(
    bot: BotDriver, slack: FakeSlack
) -> None:
    """Every viewer's Home is drawn on every change; who is in a user group is asked of Slack
    (a Tier 2 method) once for all of them, not once per viewer and change."""
    await open_home(bot, "ULEAD1", "ULEAD2", OUTSIDER)
    run_id = await request_production(bot, slack)
    before, started = len(slack.of("usergroups.users.list")), bot.clock.now()

    for _ in range(5):
        bot.runtime.home.changed()
        await bot.command("lock production release train", user="ULEAD1")
        await bot.command("unlock production", user="ULEAD1")

    assert buttons(slack, "ULEAD2") == [(APPROVE_ACTION, run_id), (REJECT_ACTION, run_id)]
    minutes = (bot.clock.now() - started).total_seconds() / 60
    assert len(slack.of("usergroups.users.list")) - before <= minutes + 1
