"""Drives the bot as Slack does: signed HTTP requests to /slack/events on a local server.

The requests are built and signed by the product's own `sandbox.slack.AppDelivery`, the same
client side the sandbox page uses; this driver adds the test's server and `settle()`.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from bot.runtime import Runtime
from bot.server import EVENTS_PATH, RUNTIME, build_web_app
from bot.settings import Settings
from commands.exchange import form_metadata
from pipeline.kernel.config import Config
from pipeline.kernel.ports import Ecs
from sandbox.slack import AppDelivery
from sandbox.slack import sign as sign_with
from tests.fakes.clock import FakeClock
from tests.fakes.slack_api import FakeSlack

SIGNING_SECRET = "test-signing-secret"


def sign(
    body: str | bytes,
    *,
    timestamp: int | str | None = None,
    secret: str = SIGNING_SECRET,
) -> dict[str, str]:
    return sign_with(body, secret=secret, timestamp=timestamp)


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
        self.delivery: AppDelivery | None = None
        self.http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        app = build_web_app(
            self.settings, self.config, clock=self.clock, ecs=self.ecs, start_scheduler=False
        )
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        self.delivery = AppDelivery(
            self.slack, request_url=self.url, signing_secret=SIGNING_SECRET, team_id="T1"
        )
        self.http = aiohttp.ClientSession()

    async def stop(self) -> None:
        if self.delivery is not None:
            await self.delivery.close()
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
        return str(self.server.make_url(EVENTS_PATH))

    @property
    def send(self) -> AppDelivery:
        assert self.delivery is not None, "start() the driver first"
        return self.delivery

    async def post_raw(
        self, body: str | bytes, *, content_type: str, headers: dict[str, str]
    ) -> tuple[int, str]:
        ack = await self.send.post(body, content_type=content_type, headers=headers)
        if ack.body is None:
            return ack.status, ""
        return ack.status, ack.body if isinstance(ack.body, str) else json.dumps(ack.body)

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
        ack = await self.send.command(
            command,
            text,
            user=user,
            channel=channel,
            trigger_id=trigger_id,
            channel_name="deployments",
        )
        await self.settle(wait_runs=wait_runs)
        return {"status": ack.status, "body": ack.body if ack.body is not None else ""}

    async def interact(self, payload: dict[str, Any], *, wait_runs: bool = True) -> int:
        body = json.dumps(payload)
        ack = await self.send.send_form({"payload": body})
        await self.settle(wait_runs=wait_runs)
        return ack.status

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
        view = {
            "id": "V1",
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": form_metadata(subject, channel),
        }
        ack = await self.send.view_submission(view, values, user=user)
        await self.settle()
        return ack.status, ack.body

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
        ack = await self.send.block_actions(
            {
                "action_id": action_id,
                "block_id": f"deploy:{value}",
                "value": value,
                "type": "button",
            },
            user=user,
            channel=channel,
            message={"ts": message_ts, "type": "message", "text": "card"},
            trigger_id=trigger_id,
        )
        await self.settle(wait_runs=wait_runs)
        return ack.status

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


def raw_user_ids(texts: list[str]) -> list[str]:
    """User or group IDs shown as bare text, not as a mention (`<@U…>`, `<!subteam^S…>`)."""
    found = []
    for text in texts:
        bare = re.sub(r"<@[UW][A-Z0-9]+>|<!subteam\^S[A-Z0-9]+>", "", text)
        found += re.findall(r"\b[UWS][A-Z0-9]{4,}\b", bare)
    return found
