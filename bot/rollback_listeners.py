"""`/rollback`: declared in the manifest; until the rollback command lands it says what to do."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.context import AppContext
from bot.payloads import SlashCommand

NOT_YET = (
    "`/rollback` is not available in this version yet, so nothing was changed.\n"
    "To go back now, deploy the previous version through the usual approvals: "
    "`/deploy <environment> <service> <previous-version>`. "
    "`/deploy status <deployment-id>` shows each service's previous version "
    "(`versions.<service>.from`), and `/deploy history <environment>` lists recent runs."
)


def register(app: AsyncApp, ctx: AppContext) -> None:
    @app.command("/rollback")
    async def rollback_command(ack: AsyncAck, command: dict[str, Any]) -> None:
        cmd = SlashCommand.model_validate(command)
        await ack(text=f"{NOT_YET}\nYou typed `{cmd.typed}`.")
        await ctx.audit_command(cmd, outcome="refused: /rollback is not available yet")
