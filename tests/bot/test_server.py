"""The HTTP edge: Slack signatures, /healthz, and clean shutdown on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest

from tests.driver import BotDriver, sign
from tests.fakes.slack_api import FakeSlack

ROOT = Path(__file__).resolve().parents[2]


def _deploy_help_body() -> str:
    return urlencode(
        {
            "command": "/deploy",
            "text": "help",
            "user_id": "U1",
            "channel_id": "C1",
            "team_id": "T1",
            "response_url": "http://127.0.0.1:9/x",
            "trigger_id": "t",
        }
    )


async def test_a_correctly_signed_command_is_answered(bot: BotDriver) -> None:
    body = _deploy_help_body()

    status, text = await bot.post_raw(
        body, content_type="application/x-www-form-urlencoded", headers=sign(body)
    )

    assert status == 200
    assert "Usage" in text


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(sign("something else"), id="signature-of-another-body"),
        pytest.param(sign(_deploy_help_body(), secret="not-our-secret"), id="wrong-secret"),
        pytest.param(sign(_deploy_help_body(), timestamp=int(time.time()) - 600), id="stale"),
        pytest.param({}, id="unsigned"),
    ],
)
async def test_forged_or_stale_requests_are_rejected_with_401(
    bot: BotDriver, slack: FakeSlack, headers: dict[str, str]
) -> None:
    status, _ = await bot.post_raw(
        _deploy_help_body(), content_type="application/x-www-form-urlencoded", headers=headers
    )

    assert status == 401
    assert await bot.runtime.audit.recent() == []


async def test_healthz_reports_ok_while_the_database_answers(bot: BotDriver) -> None:
    assert bot.http is not None
    assert bot.server is not None

    async with bot.http.get(bot.server.make_url("/healthz")) as resp:
        body = await resp.json()

    assert resp.status == 200
    assert body["status"] == "ok"
    assert body["database"] == "ok"


async def test_healthz_reports_503_when_the_database_is_gone(bot: BotDriver) -> None:
    assert bot.http is not None
    assert bot.server is not None
    await bot.runtime.store.close()

    async with bot.http.get(bot.server.make_url("/healthz")) as resp:
        body = await resp.json()

    assert resp.status == 503
    assert body["database"] == "unreachable"


@pytest.mark.slow
async def test_sigterm_stops_the_server_cleanly(tmp_path: Path, slack: FakeSlack) -> None:
    """The real `chatops-bot serve` process exits 0 on SIGTERM and serves /healthz until then."""
    config = tmp_path / "chatops.toml"
    config.write_text((ROOT / "chatops.example.toml").read_text(encoding="utf-8"))
    port = _free_port()
    env = {
        "PATH": os.environ["PATH"],  # noqa: TID251 - the child needs a PATH
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "s3cret",
        "SLACK_API_URL": slack.api_url,
        "CHATOPS_CONFIG": str(config),
        "CHATOPS_DB": str(tmp_path / "bot.db"),
        "PORT": str(port),
        "CHATOPS_HOST": "127.0.0.1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from bot.main import main; raise SystemExit(main(['serve']))",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        body = await _wait_for_health(port)
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), timeout=20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    output = (await proc.stdout.read()).decode() if proc.stdout else ""

    assert body["mode"] == "http"
    assert code == 0, output
    assert "shutting down" in output
    assert "xoxb-test" not in output
    assert "s3cret" not in output


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_for_health(port: int) -> dict[str, object]:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    return dict(json.loads(await resp.text()))
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    raise AssertionError("the server never answered /healthz")
