"""CHATOPS_LOG_FORMAT=json: one JSON object per line, with the ids a reader greps for, and no
secret in either format (issue 19, point 2)."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from bot.logs import LogFormat, Redactor, formatter
from bot.settings import SettingsError, load_settings
from tests.conftest import BotFactory
from tests.driver import SIGNING_SECRET, BotDriver, plan_cards, run_id_of
from tests.fakes.ecs import FakeEcs
from tests.fakes.slack_api import FakeSlack

TOKEN = "xoxb-test-token"
APP_TOKEN = "xapp-1-A0-secret"


class Captured:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]


@contextmanager
def _capture(fmt: LogFormat) -> Iterator[Captured]:
    captured = Captured()
    handler = logging.StreamHandler(captured.stream)
    handler.setFormatter(formatter(fmt, Redactor([TOKEN, SIGNING_SECRET, APP_TOKEN])))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield captured
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def json_log() -> Iterator[Captured]:
    with _capture(LogFormat.JSON) as captured:
        yield captured


@pytest.fixture
async def test_a_failure_told_with_a_reference_logs_one_json_line_carrying_that_reference(
    bot: BotDriver, json_log: Captured
) -> None:
    await bot.runtime.store.call(lambda db: db.execute("ALTER TABLE deployments RENAME TO gone"))

    reply = await bot.command("status 1700000000-abc123", user="UDEV")

    found = re.search(r"\(ref `([0-9a-f]{6})`\)", reply["body"]["text"])
    assert found
    [line] = [r for r in json_log.records() if r.get("ref") == found.group(1)]
    assert line["level"] == "ERROR"
    assert line["logger"] == "bot.dispatch"
    assert "no such table: deployments" in line["exception"]
    assert line["time"].endswith("+00:00")


class CrashingEcs(FakeEcs):
    async def update_service(self, **kwargs: Any) -> None:
        raise RuntimeError("the ECS client broke")


async def test_a_crashed_rollout_logs_its_deployment_id_as_a_json_field(
    make_bot: BotFactory, slack: FakeSlack, json_log: Captured
) -> None:
    ecs = CrashingEcs()
    ecs.add_service("staging", "api-gateway", "v1.3.0")
    bot = await make_bot(ecs)

    await bot.command("staging api-gateway v1.4.0", user="UDEV")

    run_id = run_id_of(plan_cards(slack)[0])
    crashed = [r for r in json_log.records() if r["message"] == "rollout crashed"]
    assert [r["deployment_id"] for r in crashed] == [run_id]
    assert "the ECS client broke" in crashed[0]["exception"]


def test_an_incident_id_passed_with_a_log_call_is_a_json_field(json_log: Captured) -> None:
    logging.getLogger("commands.incident").warning(
        "incident %s: could not post", "inc-7", extra={"incident_id": "inc-7"}
    )

    [line] = json_log.records()
    assert line["incident_id"] == "inc-7"
    assert line["message"] == "incident inc-7: could not post"


def _log_secrets() -> None:
    log = logging.getLogger("chatops")
    log.info("token is %s and %s", TOKEN, APP_TOKEN)
    log.warning("Slack said no to xoxp-1234-5678-abcdef")
    try:
        raise ValueError(f"bad signature with secret {SIGNING_SECRET}")
    except ValueError:
        log.exception("signing failed for xoxb-another-1-token")


@pytest.mark.parametrize("fmt", [LogFormat.JSON, LogFormat.TEXT])
def test_no_secret_reaches_a_log_line_in_either_format(fmt: LogFormat) -> None:
    with _capture(fmt) as captured:
        _log_secrets()

    out = captured.stream.getvalue()
    for secret in (TOKEN, APP_TOKEN, SIGNING_SECRET, "xoxp-1234", "xoxb-another"):
        assert secret not in out
    assert out.count("[redacted]") == 5
    assert "ValueError: bad signature with secret [redacted]" in out


def test_every_json_line_parses_even_with_a_multiline_traceback(json_log: Captured) -> None:
    _log_secrets()

    lines = json_log.lines()

    assert len(lines) == 3
    assert [json.loads(line)["level"] for line in lines] == ["INFO", "WARNING", "ERROR"]


def test_an_unknown_log_format_stops_the_bot_naming_the_variable() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"SLACK_BOT_TOKEN": TOKEN, "CHATOPS_LOG_FORMAT": "xml"}, env_file=None)

    [line] = caught.value.lines
    assert line.startswith("CHATOPS_LOG_FORMAT: Input should be 'text' or 'json'")
