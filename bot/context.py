"""What every listener needs, wired once in `bot/runtime.py`, plus the audit helpers."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

from bot.notifier import SlackNotifier
from bot.payloads import ButtonClick, SlashCommand
from commands.deploy import DeployCommands
from commands.incident import IncidentCommands
from pipeline.config import Config
from pipeline.ports import Clock
from store.audit import AuditLog
from store.models import AuditEntry


@dataclass(frozen=True)
class AppContext:
    config: Config
    clock: Clock
    client: AsyncWebClient
    notifier: SlackNotifier
    audit: AuditLog
    deploy: DeployCommands
    incident: IncidentCommands

    async def audit_command(
        self, cmd: SlashCommand, *, outcome: str, ref: str | None = None
    ) -> None:
        await self.audit.record(
            AuditEntry(
                at=self.clock.now(),
                actor=cmd.user_id,
                action=cmd.typed,
                outcome=outcome,
                channel_id=cmd.channel_id,
                detail=ref,
            )
        )

    async def audit_click(self, click: ButtonClick, *, action: str, outcome: str) -> None:
        await self.audit.record(
            AuditEntry(
                at=self.clock.now(),
                actor=click.user_id,
                action=f"click {action}",
                outcome=outcome,
                channel_id=click.channel_id,
                detail=click.value or None,
            )
        )
