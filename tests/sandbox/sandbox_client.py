"""A person at the sandbox page, over its HTTP API (what the page's JavaScript calls)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp

from sandbox.slack import LocalSlack, Message
from sandbox.stack import Sandbox

DEPLOYS = "C0DEPLOYS"


class PageUser:
    def __init__(self, http: aiohttp.ClientSession, url: str, user: str) -> None:
        self.http, self.url, self.user = http, url.rstrip("/"), user

    async def get(self, path: str) -> Any:
        sep = "&" if "?" in path else "?"
        async with self.http.get(f"{self.url}{path}{sep}user={self.user}") as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        async with self.http.post(f"{self.url}{path}", json={"user": self.user, **body}) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    async def type(self, text: str, *, channel: str = DEPLOYS) -> Any:
        return await self.post("/api/command", {"channel": channel, "text": text})

    async def click(self, message: Message, action_id: str) -> Any:
        block = next(b for b in message.blocks or [] if b.get("type") == "actions")
        return await self.post(
            "/api/action",
            {
                "channel": message.channel,
                "ts": message.ts,
                "block_id": block["block_id"],
                "action_id": action_id,
            },
        )

    async def sees(self, channel: str = DEPLOYS) -> str:
        return str((await self.get(f"/api/channel/{channel}"))["html"])


async def until(slack: LocalSlack, holds: Callable[[], Any], *, within_s: float = 30.0) -> Any:
    """Wait, change by change in the local Slack, until `holds()` is truthy; return it."""
    with slack.workspace.feed.subscription() as changes:
        async with asyncio.timeout(within_s):
            while not (found := holds()):
                await changes.get()
    return found


def cards(slack: LocalSlack, channel: str = DEPLOYS) -> list[Message]:
    """The bot's top-level messages with blocks in `channel`, oldest first."""
    return [
        m
        for m in slack.workspace.channel(channel).messages
        if m.user == slack.workspace.bot_user and m.blocks and not m.is_reply
    ]


def text_of(message: Message) -> str:
    return str(message.blocks)


def running_version(sandbox: Sandbox, environment: str, service: str) -> str:
    """What ECS (moto) runs for `service` in `environment`, read through boto3."""
    cluster = next(c for c in sandbox.estate.clusters if c.environment == environment)
    ecs = sandbox.aws.client("ecs", cluster.region)
    described = ecs.describe_services(cluster=cluster.name, services=[service])["services"][0]
    td = ecs.describe_task_definition(taskDefinition=described["taskDefinition"])
    [container] = [c for c in td["taskDefinition"]["containerDefinitions"] if c["name"] == service]
    return str(container["image"]).rsplit(":", 1)[1]
