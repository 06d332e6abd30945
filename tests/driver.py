"""Drives the bot as Slack does: signed HTTP requests to /slack/events on a local server."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import itertools
import json
import re
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp.test_utils import TestServer

from bot.runtime import Runtime
from bot.server import RUNTIME, build_web_app
from bot.settings import Settings
from commands.exchange import form_metadata
from pipeline.kernel.config import Config
from pipeline.kernel.ports import Ecs
from tests.fakes.clock import FakeClock
from tests.fakes.slack_api import FakeSlack

SIGNING_SECRET = "test-signing-secret"
LARGE_BODY = 1024 * 1024


def sign(
    body: str | bytes,
    *,
    timestamp: int | str | None = None,
    secret: str = SIGNING_SECRET,
) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    raw = body.encode() if isinstance(body, str) else body
    base = f"v0:{ts}:".encode() + raw
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


class BotDriver:
    def __init__(
        self, *, settings: Settings, config: Config, clock: FakeClock, ecs: Ecs, slack: FakeSlack
    ) -> None:
        self.settings = settings
        self.config = config
        self.clock = clock
        self.ecs = ecs
        self.slack = slack
        self.server: TestServer | None = None
        self.http: aiohttp.ClientSession | None = None
        # Slack gives every request its own trigger_id (and every click its action_ts), so two
        # requests alike in all else are still two requests, never a replay of one.
        self._serial = itertools.count(1)

    def _trigger(self) -> str:
        return f"T-trigger-{next(self._serial)}"

    async def start(self) -> None:
        app = build_web_app(
            self.settings, self.config, clock=self.clock, ecs=self.ecs, start_scheduler=False
        )
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        self.http = aiohttp.ClientSession()

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.close()
        if self.server is not None:
            await self.server.close()
        self.server = None

    async def restart(self) -> None:
        """Stop cleanly, start again, and wait for the start-up work (card redraws) to end."""
        await self.settle()
        await self.stop()
        await self.start()
        await self.settle(wait_runs=False)

    @property
    def runtime(self) -> Runtime:
        assert self.server is not None
        return self.server.app[RUNTIME]

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/slack/events"))

    async def post_raw(
        self, body: str | bytes, *, content_type: str, headers: dict[str, str]
    ) -> tuple[int, str]:
        assert self.http is not None
        raw = body.encode() if isinstance(body, str) else body
        # aiohttp warns (an error here) when a large body is sent as bytes rather than a stream.
        data = io.BytesIO(raw) if len(raw) > LARGE_BODY else raw
        async with self.http.post(
            self.url, data=data, headers={"Content-Type": content_type, **headers}
        ) as resp:
            return resp.status, await resp.text()

    async def command(
        self,
        text: str,
        *,
        user: str = "UREQUESTER",
        channel: str = "CDEPLOYS",
        command: str = "/deploy",
        trigger_id: str | None = None,
        wait_runs: bool = True,
    ) -> dict[str, Any]:
        """Send a signed slash command; return the HTTP status and the (JSON) ack body.

        With `wait_runs=False` it returns once the listener is done, leaving deploys running.
        """
        body = urlencode(
            {
                "token": "legacy",
                "team_id": "T1",
                "team_domain": "skillancer",
                "channel_id": channel,
                "channel_name": "deployments",
                "user_id": user,
                "user_name": user.lower(),
                "command": command,
                "text": text,
                "api_app_id": "A1",
                "response_url": self.slack.response_url(f"{command[1:]}-{user}"),
                "trigger_id": trigger_id or self._trigger(),
            }
        )
        status, text_out = await self.post_raw(
            body, content_type="application/x-www-form-urlencoded", headers=sign(body)
        )
        await self.settle(wait_runs=wait_runs)
        return {
            "status": status,
            "body": json.loads(text_out) if text_out.startswith("{") else text_out,
        }

    async def interact(self, payload: dict[str, Any], *, wait_runs: bool = True) -> int:
        body = urlencode({"payload": json.dumps(payload)})
        status, _ = await self.post_raw(
            body, content_type="application/x-www-form-urlencoded", headers=sign(body)
        )
        await self.settle(wait_runs=wait_runs)
        return status

    async def submit(
        self,
        callback_id: str,
        subject: str,
        fields: dict[str, str],
        *,
        user: str = "UCMD",
        channel: str | None = None,
    ) -> tuple[int, Any]:
        """Send a signed view_submission; the HTTP status and the ack body (None when empty).

        `fields` maps each input's block_id to its value; `status` is a select."""
        values: dict[str, Any] = {}
        for block_id, value in fields.items():
            if block_id == "status":
                values[block_id] = {
                    "value": {"type": "static_select", "selected_option": {"value": value}}
                }
            else:
                values[block_id] = {"value": {"type": "plain_text_input", "value": value}}
        payload = {
            "type": "view_submission",
            "team": {"id": "T1"},
            "api_app_id": "A1",
            "user": {"id": user, "name": user.lower(), "team_id": "T1"},
            "trigger_id": self._trigger(),
            "view": {
                "id": "V1",
                "type": "modal",
                "callback_id": callback_id,
                "private_metadata": form_metadata(subject, channel),
                "state": {"values": values},
            },
        }
        body = urlencode({"payload": json.dumps(payload)})
        status, text = await self.post_raw(
            body, content_type="application/x-www-form-urlencoded", headers=sign(body)
        )
        await self.settle()
        return status, json.loads(text) if text.strip() else None

    async def click(
        self,
        action_id: str,
        value: str,
        *,
        user: str,
        channel: str = "CDEPLOYS",
        message_ts: str = "1700000000.000001",
        trigger_id: str | None = None,
        wait_runs: bool = True,
    ) -> int:
        return await self.interact(
            {
                "type": "block_actions",
                "team": {"id": "T1"},
                "api_app_id": "A1",
                "user": {"id": user, "name": user.lower(), "team_id": "T1"},
                "channel": {"id": channel, "name": "deployments"},
                "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
                "message": {"ts": message_ts, "type": "message", "text": "card"},
                "response_url": self.slack.response_url(f"click-{user}"),
                "trigger_id": trigger_id or self._trigger(),
                "actions": [
                    {
                        "action_id": action_id,
                        "block_id": f"deploy:{value}",
                        "value": value,
                        "type": "button",
                        "action_ts": f"1700000001.{next(self._serial):06d}",
                    }
                ],
            },
            wait_runs=wait_runs,
        )

    async def settle(self, *, wait_runs: bool = True) -> None:
        """Wait until Bolt's post-ack listener work (and, unless told not to, every run) is done."""
        for _ in range(2000):
            bolt = [
                t
                for t in asyncio.all_tasks()
                if not t.done()
                and "run_ack_function_asynchronously" in getattr(t.get_coro(), "__qualname__", "")
            ]
            if bolt:
                await asyncio.gather(*bolt, return_exceptions=True)
                continue
            if wait_runs and self.server is not None and self.runtime.runner.active:
                await self.runtime.runner.wait_idle()
                continue
            if self.server is not None and self.runtime.background.active:
                await self.runtime.background.wait_idle()
                continue
            return
        raise AssertionError("the bot never settled")


def plan_cards(slack: FakeSlack) -> list[dict[str, Any]]:
    """Every top-level card the bot posted (thread replies left out)."""
    return [c for c in slack.of("chat.postMessage") if "thread_ts" not in c]


def run_id_of(card: dict[str, Any]) -> str:
    """The deployment id a posted or updated card is about."""
    for block in card["blocks"]:
        if block["type"] == "context":
            found = re.search(r"(?:Deployment|Rollback) `([^`]+)`", block["elements"][0]["text"])
            if found:
                return found.group(1)
    raise AssertionError("the card names no deployment")


def last_card(slack: FakeSlack) -> str:
    """The blocks of the latest `chat.update`, as text to search."""
    return str(slack.of("chat.update")[-1]["blocks"])


def thread(slack: FakeSlack) -> list[str]:
    """The text of every thread reply, in order."""
    return [str(c["text"]) for c in slack.of("chat.postMessage") if "thread_ts" in c]
