"""A person at the sandbox page, over its HTTP API (what the page's JavaScript calls)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp

from sandbox.slack import Ephemeral, LocalSlack, Message
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

    async def click(self, message: Message | Ephemeral, action_id: str) -> Any:
        """Click the button `action_id` of `message` (a card may hold several action rows),
        or of an ephemeral message this person sees."""
        block = next(
            b
            for b in message.blocks or []
            if b.get("type") == "actions"
            and any(e.get("action_id") == action_id for e in b.get("elements", []))
        )
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


# The canary's bakes in the tests' sandboxes: the sandbox's own 3 s / 5 s / 3 s are for people
# watching; a test marked `sandbox_bakes(None)` gets those.
TEST_BAKES = ("1s", "2s", "1s")


async def until(sandbox: Sandbox, holds: Callable[[], Any], *, within_s: float = 30.0) -> Any:
    """Wait, change by change in the local Slack, until `holds()` is truthy; return it. The
    sandbox's time flows meanwhile, and stops as soon as it holds."""
    with sandbox.slack.workspace.feed.subscription() as changes, sandbox.waiting():
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


def weights(sandbox: Sandbox, environment: str, service: str) -> dict[str, int]:
    """A canary's listener weights, colour -> percent, read through boto3."""
    canary = sandbox.config.services[service].canary_in(environment)
    assert canary is not None, f"{service} is no canary in {environment}"
    region = sandbox.estate.cluster(environment).region
    elb = sandbox.aws.client("elbv2", region)
    [listener] = elb.describe_listeners(ListenerArns=[canary.listener])["Listeners"]
    colour_of = {canary.colour(c).target_group: c for c in ("blue", "green")}
    return {
        colour_of[g["TargetGroupArn"]]: int(g["Weight"])
        for g in listener["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
    }


def running_version(sandbox: Sandbox, environment: str, service: str) -> str:
    """What ECS (moto) runs for `service` in `environment`, read through boto3; for a canary,
    what the colour taking all the traffic runs (and no traffic goes elsewhere)."""
    ecs_service = service
    if sandbox.config.services[service].canary_in(environment) is not None:
        live = weights(sandbox, environment, service)
        assert sorted(live.values()) == [0, 100], f"{service} is mid-canary: {live}"
        ecs_service = f"{service}-{max(live, key=lambda c: live[c])}"
    return colour_version(sandbox, environment, ecs_service, container=service)


def colour_version(sandbox: Sandbox, environment: str, ecs_service: str, *, container: str) -> str:
    """What one ECS service (a canary's colour, say) runs, read through boto3."""
    cluster = sandbox.estate.cluster(environment)
    ecs = sandbox.aws.client("ecs", cluster.region)
    described = ecs.describe_services(cluster=cluster.name, services=[ecs_service])["services"][0]
    td = ecs.describe_task_definition(taskDefinition=described["taskDefinition"])
    [found] = [c for c in td["taskDefinition"]["containerDefinitions"] if c["name"] == container]
    return str(found["image"]).rsplit(":", 1)[1]


def desired_count(sandbox: Sandbox, environment: str, ecs_service: str) -> int:
    cluster = sandbox.estate.cluster(environment)
    ecs = sandbox.aws.client("ecs", cluster.region)
    described = ecs.describe_services(cluster=cluster.name, services=[ecs_service])["services"][0]
    return int(described["desiredCount"])
