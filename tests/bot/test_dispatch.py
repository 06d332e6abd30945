"""The one dispatcher: whatever fails (the database, Slack), the person gets one private message
with a reference that is also in the log, and the audit log gets exactly one row."""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path

import aiohttp
import pytest

from bot.deploy.views import APPROVE_ACTION
from bot.incident.views import UPDATE_VIEW
from bot.slack import slack_failure
from store.audit import AuditEntry
from tests.driver import BotDriver, plan_cards, run_id_of
from tests.fakes.slack_api import FakeSlack

ROOT = Path(__file__).resolve().parents[2]
REF = re.compile(r"\(ref `([0-9a-f]{6})`\)")


async def _audit(bot: BotDriver) -> list[AuditEntry]:
    return list(reversed(await bot.runtime.audit.recent()))


async def _break_table(bot: BotDriver, table: str) -> None:
    """A real SQLite failure for one table; the audit log still works."""
    await bot.runtime.store.call(
        lambda db: db.execute(f"ALTER TABLE {table} RENAME TO {table}_gone")
    )


def _ref_in(text: str, caplog: pytest.LogCaptureFixture) -> str:
    found = REF.search(text)
    assert found, f"no reference in {text!r}"
    assert f"ref {found.group(1)}" in caplog.text
    return found.group(1)


async def test_a_database_failure_in_deploy_status_is_told_with_a_logged_reference(
    bot: BotDriver, caplog: pytest.LogCaptureFixture
) -> None:
    await _break_table(bot, "deployments")

    reply = await bot.command("status 1700000000-abc123", user="UDEV")

    text = reply["body"]["text"]
    assert reply["body"]["response_type"] == "ephemeral"
    assert "database did not answer" in text
    ref = _ref_in(text, caplog)
    [entry] = await _audit(bot)
    assert entry.outcome == f"failed: database error (ref {ref})"


async def test_a_slack_failure_posting_the_plan_card_is_told_with_a_logged_reference(
    bot: BotDriver, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    slack.fail_next("chat.postMessage", "fatal_error")
    slack.fail_next("chat.postMessage", "fatal_error")

    await bot.command("production api-gateway", user="UDEV")

    [said] = slack.responses
    assert said["response_type"] == "ephemeral"
    assert said["text"].startswith("I could not post the plan card here:")
    assert "Slack had a problem on its side (`fatal_error`)" in said["text"]
    assert "The card is not in this channel either, so I cancelled deployment" in said["text"]
    assert "Nothing was deployed." in said["text"]
    ref = _ref_in(said["text"], caplog)
    [entry] = await _audit(bot)
    assert entry.outcome.startswith("failed: ")
    assert entry.outcome.endswith(f"(ref {ref})")
    [run] = await bot.runtime.deploy.history(None)
    assert run.state.value == "cancelled"


async def test_a_database_failure_in_incident_list_is_told_with_a_logged_reference(
    bot: BotDriver, caplog: pytest.LogCaptureFixture
) -> None:
    await _break_table(bot, "incidents")

    reply = await bot.command("list", command="/incident", user="UDEV")

    ref = _ref_in(reply["body"]["text"], caplog)
    [entry] = await _audit(bot)
    assert entry.outcome == f"failed: database error (ref {ref})"


async def test_a_slack_failure_declaring_an_incident_is_told_with_a_logged_reference(
    bot: BotDriver, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    slack.fail_next("conversations.create", "fatal_error")

    await bot.command("p1 auth down", command="/incident", user="UDEV")

    [said] = slack.responses
    assert "I could not create the war-room channel" in said["text"]
    ref = _ref_in(said["text"], caplog)
    [entry] = await _audit(bot)
    assert entry.action == "/incident p1 auth down"
    assert entry.outcome.endswith(f"(ref {ref})")


async def test_a_database_failure_on_a_click_is_told_with_a_logged_reference(
    bot: BotDriver, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    await bot.command("production api-gateway", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[0])
    await _break_table(bot, "approvals")

    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")

    said = slack.responses[-1]
    assert said["response_type"] == "ephemeral"
    assert said["replace_original"] is False
    ref = _ref_in(said["text"], caplog)
    clicks = [e for e in await _audit(bot) if e.action.startswith("click")]
    assert [(e.action, e.outcome) for e in clicks] == [
        (f"click approve {run_id}", f"failed: database error (ref {ref})")
    ]


async def test_a_slack_failure_after_a_form_is_submitted_is_told_in_the_war_room(
    bot: BotDriver, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    await bot.command("p1 auth down", command="/incident", user="UCMD")
    (incident,) = await bot.runtime.incident.list_open()
    slack.fail_next("chat.postMessage", "fatal_error")

    await bot.submit(
        UPDATE_VIEW,
        incident.id,
        {"status": "identified", "action": "rolling back", "eta": "10 min", "impact": "logins"},
        channel=incident.channel_id,
    )

    [told] = slack.of("chat.postEphemeral")
    assert (told["channel"], told["user"]) == (incident.channel_id, "UCMD")
    assert "The update itself is recorded" in told["text"]
    ref = _ref_in(told["text"], caplog)
    [entry] = [e for e in await _audit(bot) if e.action.startswith("submit")]
    assert entry.action == f"submit post update {incident.id}"
    assert entry.outcome.endswith(f"(ref {ref})")


def test_listeners_are_registered_only_by_the_dispatcher() -> None:
    """No listener of its own, so none has its own try/except, reply or audit row."""
    registering = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("command", "action", "view", "shortcut", "event")
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "app"
            ):
                registering.append(path.relative_to(ROOT).as_posix())

    assert set(registering) == {"bot/dispatch.py"}


def test_nothing_below_bot_builds_a_slack_mention() -> None:
    mention = re.compile(r"<@\{|<#\{|<!subteam|<!channel|<!here|<!everyone")
    found = [
        path.relative_to(ROOT).as_posix()
        for package in ("commands", "pipeline", "store")
        for path in (ROOT / package).rglob("*.py")
        if mention.search(path.read_text(encoding="utf-8"))
    ]

    assert found == []


@pytest.fixture(autouse=True)
def _log_everything(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)


async def test_deploy_names_a_missing_slack_permission_as_incident_does(
    bot: BotDriver, slack: FakeSlack
) -> None:
    slack.scopes = frozenset(slack.scopes or ()) - {"chat:write"}

    await bot.command("production api-gateway", user="UDEV")

    said = slack.responses[-1]["text"]
    assert "the Slack app lacks the `chat:write` permission (`missing_scope`)" in said
    assert "Something went wrong" not in said


def test_a_refusal_inside_concurrent_work_is_told_as_itself() -> None:
    from bot.dispatch import explain
    from pipeline.kernel.errors import NotFound

    group = ExceptionGroup("planning", [ExceptionGroup("inner", [NotFound("No such listener.")])])

    said = explain(group)

    assert (said.text, said.audit) == ("No such listener.", "refused: No such listener.")


def test_a_slack_that_cannot_be_reached_is_not_called_slow() -> None:
    """A refused or dropped connection says so; only a timeout says "did not answer in time"."""
    dropped = slack_failure(aiohttp.ServerDisconnectedError(), "look for the plan card")
    late = slack_failure(TimeoutError(), "look for the plan card")

    assert dropped.user_message == (
        "I could not look for the plan card: Slack could not be reached "
        "(ServerDisconnectedError). Try again."
    )
    assert late.user_message == (
        "I could not look for the plan card: Slack did not answer in time. Try again."
    )
