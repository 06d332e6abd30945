"""A channel, a thread and a modal of the local Slack as one person sees them, as HTML.

Ephemeral messages are shown only to the person they were sent to; messages carry their author,
the time the page first saw them, "(edited)", their pin and their reply count.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sandbox.slack import Ephemeral, Message, Workspace
from sandbox.web.render import Names, message_body

SLACKBOT = "USLACKBOT"


def names_of(workspace: Workspace, groups: Mapping[str, str]) -> Names:
    return Names(
        users={u.id: u.real_name for u in workspace.users.values()},
        groups=dict(groups),
        channels={c.id: c.name for c in workspace.channels.values()},
    )


def _initials(name: str) -> str:
    return "".join(part[0] for part in name.split()[:2]).upper() or "?"


def _hue(ident: str) -> int:
    return int(hashlib.sha256(ident.encode()).hexdigest()[:4], 16) % 360


def _head(
    workspace: Workspace, user: str, *, seen: datetime | None, extra: str = ""
) -> tuple[str, str]:
    """The avatar, and the line with the author's name, badge, time and `extra`."""
    if user == SLACKBOT:
        name, is_bot = "Slackbot", True
    else:
        known = workspace.users.get(user)
        name, is_bot = (known.real_name, known.is_bot) if known else (user, False)
    badge = '<span class="app-badge">APP</span>' if is_bot else ""
    when = f"<time>{seen.strftime('%H:%M:%S')}</time>" if seen else ""
    avatar = (
        f'<div class="avatar" style="background:hsl({_hue(user)},45%,42%)">'
        f"{html.escape(_initials(name))}</div>"
    )
    head = f'<div class="msg-head"><span class="author">{html.escape(name)}</span>{badge}{when}'
    return avatar, head + extra + "</div>"


class Timeline:
    """Draws messages, remembering when the page first saw each one (Slack ts here are ids)."""

    def __init__(self, workspace: Workspace, *, groups: Mapping[str, str]) -> None:
        self._workspace = workspace
        self._groups = groups
        self._seen: dict[str, datetime] = {}

    def saw(self, channel: str | None, ts: str) -> None:
        self._seen.setdefault(f"{channel}:{ts}", datetime.now().astimezone())

    def _seen_at(self, channel: str | None, ts: str) -> datetime:
        key = f"{channel}:{ts}"
        return self._seen.setdefault(key, datetime.now().astimezone())

    @property
    def names(self) -> Names:
        return names_of(self._workspace, self._groups)

    def _message(self, message: Message, *, replies: int, names: Names) -> str:
        channel = self._workspace.channel(message.channel)
        extras = []
        if message.edits:
            extras.append('<span class="edited">(edited)</span>')
        if message.ts in channel.pins:
            extras.append('<span class="pinned">📌 Pinned</span>')
        avatar, head = _head(
            self._workspace,
            message.user,
            seen=self._seen_at(message.channel, message.ts),
            extra="".join(extras),
        )
        thread = ""
        if replies:
            label = f"{replies} repl{'y' if replies == 1 else 'ies'}"
            thread = (
                f'<button type="button" class="replies" data-thread="{html.escape(message.ts)}">'
                f"{label}</button>"
            )
        body = message_body(message.to_api(), names)
        return (
            f'<div class="msg" data-ts="{html.escape(message.ts)}">{avatar}'
            f'<div class="msg-main">{head}<div class="msg-body">{body}</div>{thread}</div></div>'
        )

    def _ephemeral(self, ephemeral: Ephemeral, *, names: Names) -> str:
        author = SLACKBOT if ephemeral.via == "slackbot" else self._workspace.bot_user
        avatar, head = _head(
            self._workspace,
            author,
            seen=self._seen_at(ephemeral.channel, ephemeral.ts),
            extra='<span class="only-you">Only visible to you</span>',
        )
        body = message_body({"text": ephemeral.text, "blocks": ephemeral.blocks}, names)
        return (
            f'<div class="msg ephemeral" data-ts="{html.escape(ephemeral.ts)}">{avatar}'
            f'<div class="msg-main">{head}<div class="msg-body">{body}</div></div></div>'
        )

    def _ephemerals(self, channel: str, user: str, thread_ts: str | None) -> Iterable[Ephemeral]:
        return (
            e
            for e in self._workspace.ephemerals
            if e.channel == channel and e.user == user and e.thread_ts == thread_ts
        )

    def channel(self, channel_id: str, *, user: str) -> str:
        """The channel's top-level messages and the person's ephemerals, oldest first."""
        names = self.names
        messages = self._workspace.channel(channel_id).messages
        replies: dict[str, int] = {}
        for m in messages:
            if m.is_reply and m.thread_ts is not None:
                replies[m.thread_ts] = replies.get(m.thread_ts, 0) + 1
        items: list[tuple[float, str]] = [
            (float(m.ts), self._message(m, replies=replies.get(m.ts, 0), names=names))
            for m in messages
            if not m.is_reply or m.reply_broadcast
        ]
        items += [
            (float(e.ts), self._ephemeral(e, names=names))
            for e in self._ephemerals(channel_id, user, None)
        ]
        return "".join(html_ for _, html_ in sorted(items, key=lambda i: i[0]))

    def thread(self, channel_id: str, ts: str, *, user: str) -> str:
        """A thread: its parent, then its replies and the person's ephemerals in it."""
        names = self.names
        parent, *replies = self._workspace.replies(channel_id, ts)
        items: list[tuple[float, str]] = [
            (float(m.ts), self._message(m, replies=0, names=names)) for m in replies
        ]
        items += [
            (float(e.ts), self._ephemeral(e, names=names))
            for e in self._ephemerals(channel_id, user, ts)
        ]
        head = self._message(parent, replies=0, names=names)
        rest = "".join(html_ for _, html_ in sorted(items, key=lambda i: i[0]))
        count = len(replies)
        divider = f'<div class="thread-count">{count} repl{"y" if count == 1 else "ies"}</div>'
        return head + divider + rest


def view_summary(view: Mapping[str, Any]) -> dict[str, str]:
    """A modal's title, submit and close labels, as plain text."""

    def label(key: str, default: str) -> str:
        obj = view.get(key)
        return str(obj.get("text")) if isinstance(obj, dict) else default

    return {
        "title": label("title", ""),
        "submit": label("submit", ""),
        "close": label("close", "Cancel"),
    }
