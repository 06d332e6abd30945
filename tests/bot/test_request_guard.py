"""The door of /slack/events: malformed, forged and replayed requests, as an attacker sends them."""

from __future__ import annotations

import logging
import time
from urllib.parse import urlencode

import pytest

from tests.driver import BotDriver, sign
from tests.fakes.slack_api import FakeSlack

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
FORGED = {"X-Slack-Request-Timestamp": "", "X-Slack-Signature": "v0=" + "0" * 64}

MALFORMED = [
    pytest.param(b"\xff\xfe\x80 not utf-8", FORM, id="invalid-utf-8"),
    pytest.param(b"{", FORM, id="open-brace"),
    pytest.param(b"{", JSON, id="open-brace-as-json"),
    pytest.param(b"[]", JSON, id="json-array"),
    pytest.param(b"payload=not-json", FORM, id="payload-not-json"),
    pytest.param(b"payload=[]", FORM, id="payload-array"),
]


def _forged() -> dict[str, str]:
    return {**FORGED, "X-Slack-Request-Timestamp": str(int(time.time()))}


def _incident_body(response_url: str, summary: str = "login button misaligned") -> str:
    return urlencode(
        {
            "command": "/incident",
            "text": f"p4 {summary}",
            "user_id": "UCMD",
            "user_name": "casey",
            "channel_id": "CGENERAL",
            "team_id": "T1",
            "api_app_id": "A1",
            "response_url": response_url,
            "trigger_id": "t",
        }
    )


def _trouble(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Records at ERROR or with a traceback."""
    return [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize(("body", "content_type"), MALFORMED)
async def test_an_unsigned_malformed_body_is_refused_401_without_a_traceback(
    bot: BotDriver, caplog: pytest.LogCaptureFixture, body: bytes, content_type: str
) -> None:
    caplog.set_level(logging.DEBUG)

    status, _ = await bot.post_raw(body, content_type=content_type, headers=_forged())

    assert status == 401
    assert _trouble(caplog) == []
    assert await bot.runtime.audit.recent() == []


@pytest.mark.parametrize(("body", "content_type"), MALFORMED)
async def test_a_signed_body_bolt_could_not_read_is_refused_400_without_a_traceback(
    bot: BotDriver, caplog: pytest.LogCaptureFixture, body: bytes, content_type: str
) -> None:
    caplog.set_level(logging.DEBUG)

    status, _ = await bot.post_raw(body, content_type=content_type, headers=sign(body))

    assert status == 400
    assert _trouble(caplog) == []
    assert await bot.runtime.audit.recent() == []


@pytest.mark.parametrize(
    "stamp",
    [
        pytest.param("soon", id="not-a-number"),
        pytest.param("1e10", id="exponent"),
        pytest.param("-1700000000", id="negative"),
        pytest.param("１７００００００００", id="full-width-digits"),
        pytest.param(" 1700000000", id="leading-space"),
        pytest.param("17000000000000", id="too-many-digits"),
        pytest.param("", id="empty"),
    ],
)
async def test_a_timestamp_that_is_not_unix_seconds_is_refused_401_without_a_traceback(
    bot: BotDriver, slack: FakeSlack, caplog: pytest.LogCaptureFixture, stamp: str
) -> None:
    """Even correctly signed over the odd timestamp: the form is checked before anything."""
    caplog.set_level(logging.DEBUG)
    body = _incident_body(slack.response_url("incident"))

    status, _ = await bot.post_raw(body, content_type=FORM, headers=sign(body, timestamp=stamp))

    assert status == 401
    assert _trouble(caplog) == []
    assert slack.of("conversations.create") == []


async def test_a_body_over_the_size_limit_is_refused_413(bot: BotDriver) -> None:
    body = b"text=" + b"a" * (2 * 1024 * 1024)

    status, _ = await bot.post_raw(body, content_type=FORM, headers=sign(body))

    assert status == 413


async def test_the_same_signed_incident_sent_twice_opens_one_war_room(
    bot: BotDriver, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    body = _incident_body(slack.response_url("incident"))
    headers = sign(body)

    first = await bot.post_raw(body, content_type=FORM, headers=headers)
    await bot.settle()
    again = await bot.post_raw(body, content_type=FORM, headers=headers)
    await bot.settle()

    assert first[0] == 200
    assert again == (200, "")
    assert len(slack.of("conversations.create")) == 1
    audited = [e for e in await bot.runtime.audit.recent() if e.action.startswith("/incident")]
    assert len(audited) == 1
    assert any("replayed request" in r.getMessage() for r in caplog.records)


async def test_a_replay_after_a_restart_is_still_acknowledged_without_acting(
    bot: BotDriver, slack: FakeSlack
) -> None:
    body = _incident_body(slack.response_url("incident"))
    headers = sign(body)
    await bot.post_raw(body, content_type=FORM, headers=headers)

    await bot.restart()
    status, text = await bot.post_raw(body, content_type=FORM, headers=headers)
    await bot.settle()

    assert (status, text) == (200, "")
    assert len(slack.of("conversations.create")) == 1


async def test_the_same_command_sent_again_later_is_a_new_request(
    bot: BotDriver, slack: FakeSlack
) -> None:
    body = _incident_body(slack.response_url("incident"))
    now = int(time.time())

    await bot.post_raw(body, content_type=FORM, headers=sign(body, timestamp=now - 5))
    await bot.post_raw(body, content_type=FORM, headers=sign(body, timestamp=now))
    await bot.settle()

    created = [c for c in slack.calls if c.method == "conversations.create" and not c.error]
    assert len(created) == 2


async def test_a_refused_request_is_one_warning_line_without_its_body_or_response_url(
    bot: BotDriver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hook = "https://hooks.slack.com/commands/T1/42/s3cr3t-hook-token"
    body = urlencode({"command": "/deploy", "text": "production all", "response_url": hook})
    headers = sign(body, secret="not-our-secret")

    status, _ = await bot.post_raw(body, content_type=FORM, headers=headers)

    assert status == 401
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.levelname for r in loud] == ["WARNING"]
    assert "refused a request" in loud[0].getMessage()
    for record in caplog.records:
        said = record.getMessage()
        assert "s3cr3t-hook-token" not in said
        assert "production all" not in said
        assert headers["X-Slack-Signature"].removeprefix("v0=") not in said
