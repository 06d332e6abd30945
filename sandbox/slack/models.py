"""What a local Slack workspace holds: users, channels, messages and their edits, views.

Plain mutable dataclasses owned by `Workspace`; `to_api()` renders each as the Web API shows it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]


@dataclass
class User:
    id: str
    name: str
    real_name: str
    is_bot: bool = False

    def to_api(self, team_id: str) -> Json:
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "real_name": self.real_name,
            "deleted": False,
            "is_bot": self.is_bot,
            "profile": {"real_name": self.real_name, "display_name": self.name},
        }


@dataclass(frozen=True)
class Edit:
    """A message's text and blocks as they were before one `chat.update`, and when it came."""

    text: str
    blocks: list[Json] | None
    replaced_at: str


@dataclass
class Message:
    channel: str
    ts: str
    user: str
    text: str
    blocks: list[Json] | None = None
    attachments: list[Json] | None = None
    metadata: Json | None = None
    thread_ts: str | None = None
    reply_broadcast: bool = False
    bot_id: str | None = None
    edits: list[Edit] = field(default_factory=list)

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def to_api(self, *, include_metadata: bool = True, reply_count: int = 0) -> Json:
        out: Json = {"type": "message", "ts": self.ts, "user": self.user, "text": self.text}
        if self.bot_id is not None:
            out["bot_id"] = self.bot_id
        if self.blocks is not None:
            out["blocks"] = self.blocks
        if self.attachments is not None:
            out["attachments"] = self.attachments
        if self.thread_ts is not None:
            out["thread_ts"] = self.thread_ts
        if reply_count:
            out["thread_ts"] = self.ts
            out["reply_count"] = reply_count
        if self.reply_broadcast:
            out["subtype"] = "thread_broadcast"
        if self.edits:
            out["edited"] = {"user": self.user, "ts": self.edits[-1].replaced_at}
        if include_metadata and self.metadata is not None:
            out["metadata"] = self.metadata
        return copy.deepcopy(out)


@dataclass
class Channel:
    id: str
    name: str
    is_private: bool = False
    is_archived: bool = False
    topic: str = ""
    creator: str | None = None
    members: list[str] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    pins: list[str] = field(default_factory=list)

    def to_api(self, *, bot_user: str) -> Json:
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": True,
            "is_private": self.is_private,
            "is_archived": self.is_archived,
            "is_member": bot_user in self.members,
            "creator": self.creator or "",
            "topic": {"value": self.topic, "creator": "", "last_set": 0},
            "num_members": len(self.members),
        }


@dataclass(frozen=True)
class Ephemeral:
    """A message only `user` sees, from `chat.postEphemeral` or a `response_url` post."""

    channel: str | None
    user: str | None
    text: str
    blocks: list[Json] | None
    thread_ts: str | None
    ts: str
    via: str

    def to_api(self) -> Json:
        return copy.deepcopy(
            {
                "channel": self.channel,
                "user": self.user,
                "text": self.text,
                "blocks": self.blocks,
                "thread_ts": self.thread_ts,
                "ts": self.ts,
                "via": self.via,
            }
        )


@dataclass
class View:
    """An open modal: what the app sent, where it sits in its stack, and its `hash`."""

    id: str
    view: Json
    hash: str
    root_view_id: str
    previous_view_id: str | None = None
    trigger_id: str | None = None

    def to_api(self, *, team_id: str, bot_id: str) -> Json:
        return copy.deepcopy(
            {
                **self.view,
                "id": self.id,
                "team_id": team_id,
                "bot_id": bot_id,
                "hash": self.hash,
                "root_view_id": self.root_view_id,
                "previous_view_id": self.previous_view_id,
                "state": {"values": {}},
            }
        )
