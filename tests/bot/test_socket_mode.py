"""Socket Mode: with SLACK_APP_TOKEN the bot dials Slack's WebSocket instead of serving events."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from bot.main import run_server
from bot.settings import Settings
from pipeline.kernel.config import Config
from tests.fakes.slack_api import FakeSlack
from tests.scrapes import scrape_url, value


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_socket_mode_connects_and_answers_a_slash_command(
    tmp_path: Path, slack: FakeSlack, config: Config
) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_APP_TOKEN="xapp-1-test",
        SLACK_API_URL=slack.api_url,
        CHATOPS_DB=str(tmp_path / "bot.db"),
        PORT=_free_port(),
        CHATOPS_HOST="127.0.0.1",
    )
    stop = asyncio.Event()
    server = asyncio.create_task(run_server(settings, config, stop=stop))
    try:
        await asyncio.wait_for(slack.socket_connected.wait(), timeout=10)
        await slack.push(
            {
                "envelope_id": "env-1",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": {
                    "command": "/deploy",
                    "text": "help",
                    "user_id": "U1",
                    "channel_id": "C1",
                    "team_id": "T1",
                    "api_app_id": "A1",
                    "response_url": slack.response_url("sm"),
                    "trigger_id": "t",
                },
            }
        )
        for _ in range(200):
            if slack.socket_messages:
                break
            await asyncio.sleep(0.02)
        metrics = await scrape_url(f"http://127.0.0.1:{settings.port}/metrics")
    finally:
        stop.set()
        await asyncio.wait_for(server, timeout=10)

    assert slack.of("apps.connections.open")
    ack = slack.socket_messages[0]
    assert ack["envelope_id"] == "env-1"
    assert "Usage" in ack["payload"]["text"]
    assert value(metrics, "chatops_ack_seconds_count") == 1


async def test_an_envelope_slack_sends_twice_is_acknowledged_twice_and_acted_on_once(
    tmp_path: Path, slack: FakeSlack, config: Config
) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_APP_TOKEN="xapp-1-test",
        SLACK_API_URL=slack.api_url,
        CHATOPS_DB=str(tmp_path / "bot.db"),
        PORT=_free_port(),
        CHATOPS_HOST="127.0.0.1",
    )
    envelope = {
        "envelope_id": "env-7",
        "type": "slash_commands",
        "accepts_response_payload": True,
        "payload": {
            "command": "/incident",
            "text": "p4 login button misaligned",
            "user_id": "UCMD",
            "channel_id": "CGENERAL",
            "team_id": "T1",
            "api_app_id": "A1",
            "response_url": slack.response_url("sm"),
            "trigger_id": "t",
        },
    }
    stop = asyncio.Event()
    server = asyncio.create_task(run_server(settings, config, stop=stop))
    try:
        await asyncio.wait_for(slack.socket_connected.wait(), timeout=10)
        await slack.push(envelope)
        await slack.push(envelope)
        for _ in range(250):
            if len(slack.socket_messages) >= 2 and slack.of("pins.add"):
                break
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(server, timeout=10)

    assert [m["envelope_id"] for m in slack.socket_messages] == ["env-7", "env-7"]
    assert len(slack.of("conversations.create")) == 1
