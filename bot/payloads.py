"""Raw Slack payloads stop here: parsed into small pydantic models before reaching commands."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class SlashCommand(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    command: str
    text: str = ""
    user_id: str
    channel_id: str
    response_url: str | None = None
    trigger_id: str | None = None

    @property
    def typed(self) -> str:
        return f"{self.command} {self.text}".strip()


class ButtonClick(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    user_id: str
    channel_id: str | None
    action_id: str
    value: str
    message_ts: str | None
    trigger_id: str | None

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ButtonClick:
        action = (body.get("actions") or [{}])[0]
        return cls(
            user_id=body["user"]["id"],
            channel_id=(body.get("channel") or {}).get("id"),
            action_id=action.get("action_id", ""),
            value=action.get("value", ""),
            message_ts=(body.get("message") or {}).get("ts"),
            trigger_id=body.get("trigger_id"),
        )
