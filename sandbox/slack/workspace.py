"""The state of a local Slack workspace, and the changes Web API calls make to it.

Each mutation checks what Slack checks about state (archived channel, message not found, name
taken...), raises `SlackError` with Slack's code, and publishes a `Change` on `feed`.
Argument checks (lengths, Block Kit) live in `limits`; scopes in `scopes`.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Iterable, Iterator, MutableMapping
from typing import Final

from sandbox.slack import limits
from sandbox.slack.errors import SlackError
from sandbox.slack.feed import Change, ChangeFeed, ChangeKind
from sandbox.slack.models import Channel, Edit, Ephemeral, Json, Message, User, View

USER_ID: Final = re.compile(r"[UW][A-Z0-9]{2,}")
CHANNEL_ID: Final = re.compile(r"[CGD][A-Z0-9]{2,}")
BOT_USER: Final = "UBOT"
BOT_ID: Final = "BBOT"
TEAM_ID: Final = "T1"
MAX_VIEW_STACK: Final = 3  # Slack: views.push onto a stack of at most three views

SEED_USERS: Final = (
    User(BOT_USER, "chatops", "ChatOps", is_bot=True),
    User("UALICE", "alice", "Alice Archer"),
    User("UBOB", "bob", "Bob Brennan"),
    User("UCAROL", "carol", "Carol Chen"),
)


class Workspace:
    """Users, user groups, channels with their messages and pins, ephemerals and open views.

    A well-formed channel id nobody created is a public channel created on first use, unless it
    is in `missing_channels`; a well-formed user id is a known user unless in `unknown_users`.
    """

    def __init__(
        self,
        *,
        users: Iterable[User] = SEED_USERS,
        groups: dict[str, list[str]] | None = None,
        feed: ChangeFeed | None = None,
    ) -> None:
        self.bot_user = BOT_USER
        self.bot_id = BOT_ID
        self.team_id = TEAM_ID
        self.users: dict[str, User] = {u.id: u for u in users}
        self.groups: dict[str, list[str]] = groups if groups is not None else {}
        self.channels: dict[str, Channel] = {}
        self.ephemerals: list[Ephemeral] = []
        self.views: dict[str, View] = {}
        self.home_views: dict[str, View] = {}
        """The Home tab last published to each user, by user id."""
        self.home_tab_enabled = True
        self.missing_channels: set[str] = set()
        self.unknown_users: set[str] = set()
        self.feed = feed if feed is not None else ChangeFeed()
        self._ts = itertools.count(1)
        self._channel_ids = itertools.count(1)
        self._view_ids = itertools.count(1)

    def next_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    def _publish(self, kind: ChangeKind, channel: str | None, data: Json) -> None:
        self.feed.publish(Change(kind, channel, data))

    # Users and groups

    def knows_user(self, user_id: str) -> bool:
        if user_id in self.unknown_users:
            return False
        return user_id in self.users or USER_ID.fullmatch(user_id) is not None

    def user(self, user_id: str) -> User:
        if not self.knows_user(user_id):
            raise SlackError("user_not_found")
        if user_id not in self.users:
            self.users[user_id] = User(user_id, user_id.lower(), user_id.title())
        return self.users[user_id]

    def group_members(self, group_id: str) -> list[str]:
        if group_id not in self.groups:
            raise SlackError("no_such_subteam")
        return list(self.groups[group_id])

    # Channels

    def find_channel(self, channel_id: str) -> Channel | None:
        return self.channels.get(channel_id)

    def channel(self, channel_id: str) -> Channel:
        """The channel, created on first use when its id is well-formed and not missing."""
        found = self.channels.get(channel_id)
        if found is not None:
            return found
        if channel_id in self.missing_channels or not CHANNEL_ID.fullmatch(channel_id):
            raise SlackError("channel_not_found")
        return self.add_channel(channel_id, channel_id.lower())

    def add_channel(
        self, channel_id: str, name: str, *, is_private: bool = False, creator: str | None = None
    ) -> Channel:
        members = [creator] if creator else []
        channel = Channel(channel_id, name, is_private, creator=creator, members=members)
        self.channels[channel_id] = channel
        self._publish(ChangeKind.CHANNEL_CREATED, channel_id, self._channel_api(channel))
        return channel

    def create_channel(self, name: str, *, is_private: bool) -> Channel:
        error = limits.channel_name_error(name)
        if error is not None:
            raise SlackError(error)
        if any(c.name == name for c in self.channels.values()):
            raise SlackError("name_taken")
        channel_id = f"C{next(self._channel_ids):08d}"
        while channel_id in self.channels:
            channel_id = f"C{next(self._channel_ids):08d}"
        return self.add_channel(channel_id, name, is_private=is_private, creator=self.bot_user)

    def _open(self, channel_id: str, *, member: str | None = None) -> Channel:
        """The channel, which must be unarchived and (when `member` is given) have that member."""
        channel = self.channel(channel_id)
        if channel.is_archived:
            raise SlackError("is_archived")
        if member is not None and member not in channel.members:
            raise SlackError("not_in_channel")
        return channel

    def _changed(self, channel: Channel) -> Channel:
        self._publish(ChangeKind.CHANNEL_CHANGED, channel.id, self._channel_api(channel))
        return channel

    def _channel_api(self, channel: Channel) -> Json:
        return channel.to_api(bot_user=self.bot_user)

    def set_topic(self, channel_id: str, topic: str) -> Channel:
        if len(topic) > limits.MAX_TOPIC:
            raise SlackError("too_long")
        channel = self._open(channel_id, member=self.bot_user)
        channel.topic = topic
        return self._changed(channel)

    def invite(self, channel_id: str, user_ids: list[str], *, force: bool = False) -> Channel:
        """Add `user_ids` to the channel. Without `force`, one bad user refuses the whole call.

        With `force` (Slack's "continue inviting the valid ones"), the valid users are added
        and the call answers `ok: false` with a per-user `errors` list for the others.
        """
        if not user_ids:
            raise SlackError("no_user")
        if len(user_ids) > limits.MAX_INVITE_USERS:
            raise SlackError("too_many_users")
        channel = self._open(channel_id, member=self.bot_user)
        refused = [(u, self._invite_error(channel, u)) for u in user_ids]
        refused = [(u, e) for u, e in refused if e is not None]
        if refused and not force:
            raise SlackError(refused[0][1] or "")
        bad = {u for u, _ in refused}
        channel.members.extend(u for u in dict.fromkeys(user_ids) if u not in bad)
        self._changed(channel)
        if refused:
            raise SlackError(
                refused[0][1] or "",
                errors=[{"user": u, "ok": False, "error": e} for u, e in refused],
            )
        return channel

    def _invite_error(self, channel: Channel, user_id: str) -> str | None:
        if user_id == self.bot_user:
            return "cant_invite_self"
        if not self.knows_user(user_id):
            return "user_not_found"
        if user_id in channel.members:
            return "already_in_channel"
        return None

    def join(self, channel_id: str, user_id: str) -> Channel:
        channel = self._open(channel_id)
        if channel.is_private and user_id not in channel.members:
            raise SlackError("method_not_supported_for_channel_type")
        if user_id not in channel.members:
            channel.members.append(user_id)
            self._changed(channel)
        return channel

    def archive(self, channel_id: str) -> Channel:
        channel = self.channel(channel_id)
        if channel.is_archived:
            raise SlackError("already_archived")
        channel.is_archived = True
        return self._changed(channel)

    # Messages

    def post(
        self,
        channel_id: str,
        *,
        user: str,
        text: str,
        blocks: list[Json] | None = None,
        attachments: list[Json] | None = None,
        metadata: Json | None = None,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
    ) -> Message:
        channel = self._open(channel_id)
        message = Message(
            channel=channel.id,
            ts=self.next_ts(),
            user=user,
            text=text,
            blocks=blocks,
            attachments=attachments,
            metadata=metadata,
            thread_ts=thread_ts,
            reply_broadcast=reply_broadcast and thread_ts is not None,
            bot_id=self.bot_id if user == self.bot_user else None,
        )
        channel.messages.append(message)
        self._publish(ChangeKind.MESSAGE_POSTED, channel.id, message.to_api())
        return message

    def message(self, channel_id: str, ts: str) -> Message:
        for message in self.channel(channel_id).messages:
            if message.ts == ts:
                return message
        raise SlackError("message_not_found")

    def update(
        self,
        channel_id: str,
        ts: str,
        *,
        by: str,
        text: str | None,
        blocks: list[Json] | None,
    ) -> Message:
        """Edit a message; omitted text or blocks keep their value, as Slack's do."""
        message = self.message(channel_id, ts)
        if message.user != by:
            raise SlackError("cant_update_message")
        if self.channel(channel_id).is_archived:
            raise SlackError("is_archived")
        message.edits.append(Edit(message.text, message.blocks, self.next_ts()))
        if text is not None:
            message.text = text
        if blocks is not None:
            message.blocks = blocks
        self._publish(ChangeKind.MESSAGE_UPDATED, message.channel, message.to_api())
        return message

    def delete(self, channel_id: str, ts: str, *, by: str) -> None:
        message = self.message(channel_id, ts)
        if message.user != by:
            raise SlackError("cant_delete_message")
        self.channel(channel_id).messages.remove(message)
        self._publish(ChangeKind.MESSAGE_DELETED, message.channel, {"ts": ts})

    def render(self, message: Message, *, include_metadata: bool = True) -> Json:
        """A message as conversations.history and .replies show it, with its reply count."""
        replies = sum(
            1
            for m in self.channel(message.channel).messages
            if m.is_reply and m.thread_ts == message.ts
        )
        return message.to_api(include_metadata=include_metadata, reply_count=replies)

    def history(
        self,
        channel_id: str,
        *,
        oldest: str | None = None,
        latest: str | None = None,
        inclusive: bool = False,
    ) -> list[Message]:
        """Top-level messages and thread broadcasts between `oldest` and `latest`, newest first."""

        def inside(ts: str) -> bool:
            low = oldest is None or ts > oldest or (inclusive and ts == oldest)
            high = latest is None or ts < latest or (inclusive and ts == latest)
            return low and high

        messages = self.channel(channel_id).messages
        shown = [m for m in messages if (not m.is_reply or m.reply_broadcast) and inside(m.ts)]
        return sorted(shown, key=lambda m: float(m.ts), reverse=True)

    def replies(self, channel_id: str, ts: str) -> list[Message]:
        try:
            parent = self.message(channel_id, ts)
        except SlackError:
            raise SlackError("thread_not_found") from None
        thread = [m for m in self.channel(channel_id).messages if m.is_reply and m.thread_ts == ts]
        return [parent, *sorted(thread, key=lambda m: float(m.ts))]

    def pin(self, channel_id: str, ts: str) -> None:
        message = self.message(channel_id, ts)
        channel = self._open(channel_id)
        if ts in channel.pins:
            raise SlackError("already_pinned")
        channel.pins.append(ts)
        self._publish(ChangeKind.PINNED, channel.id, message.to_api())

    def post_ephemeral(
        self,
        channel_id: str | None,
        *,
        user: str | None,
        text: str,
        blocks: list[Json] | None = None,
        thread_ts: str | None = None,
        via: str = "chat.postEphemeral",
    ) -> Ephemeral:
        if channel_id is not None:
            self._open(channel_id)
        if user is not None:
            self.user(user)
        ephemeral = Ephemeral(channel_id, user, text, blocks, thread_ts, self.next_ts(), via)
        self.ephemerals.append(ephemeral)
        self._publish(ChangeKind.EPHEMERAL, channel_id, ephemeral.to_api())
        return ephemeral

    def ephemeral(self, ts: str) -> Ephemeral:
        for ephemeral in self.ephemerals:
            if ephemeral.ts == ts:
                return ephemeral
        raise SlackError("message_not_found")

    def replace_ephemeral(self, ts: str, *, text: str, blocks: list[Json] | None) -> Ephemeral:
        """What `replace_original` through a click's `response_url` does to an ephemeral
        message: the same message, now with this content (only its reader sees it)."""
        old = self.ephemeral(ts)
        new = dataclasses.replace(old, text=text, blocks=blocks)
        self.ephemerals[self.ephemerals.index(old)] = new
        self._publish(ChangeKind.EPHEMERAL, new.channel, new.to_api())
        return new

    def delete_ephemeral(self, ts: str) -> None:
        old = self.ephemeral(ts)
        self.ephemerals.remove(old)
        self._publish(ChangeKind.EPHEMERAL, old.channel, {**old.to_api(), "deleted": True})

    # Views

    def render_view(self, view: View) -> Json:
        return view.to_api(team_id=self.team_id, bot_id=self.bot_id)

    def _new_view(self, view: Json, *, root: str | None, previous: str | None) -> View:
        view_id = f"V{next(self._view_ids):08d}"
        opened = View(view_id, view, self.next_ts(), root or view_id, previous)
        self.views[view_id] = opened
        return opened

    def open_view(self, view: Json, *, trigger_id: str) -> View:
        opened = self._new_view(view, root=None, previous=None)
        opened.trigger_id = trigger_id
        self._publish(ChangeKind.VIEW_OPENED, None, self.render_view(opened))
        return opened

    def update_view(
        self, view: Json, *, view_id: str | None, external_id: str | None, hash_: str | None
    ) -> View:
        found = self.views.get(view_id or "")
        if found is None and external_id:
            found = next(
                (v for v in self.views.values() if v.view.get("external_id") == external_id), None
            )
        if found is None:
            raise SlackError("not_found")
        if hash_ is not None and hash_ != found.hash:
            raise SlackError("hash_conflict")
        found.view = view
        found.hash = self.next_ts()
        self._publish(ChangeKind.VIEW_UPDATED, None, self.render_view(found))
        return found

    def publish_home(self, user_id: str, view: Json, *, hash_: str | None) -> View:
        """Publish `view` as `user_id`'s Home tab: it replaces the one they had (same id)."""
        if not self.home_tab_enabled:
            raise SlackError("not_enabled")
        self.user(user_id)
        found = self.home_views.get(user_id)
        if hash_ is not None and (found is None or hash_ != found.hash):
            raise SlackError("hash_conflict")
        if found is None:
            view_id = f"V{next(self._view_ids):08d}"
            found = View(view_id, view, self.next_ts(), view_id)
            self.home_views[user_id] = found
        else:
            found.view = view
            found.hash = self.next_ts()
        self._publish(ChangeKind.HOME_PUBLISHED, None, {"user": user_id, "id": found.id})
        return found

    def push_view(self, view: Json, *, trigger_id: str) -> View:
        """Push onto the newest open stack (the one a modal's interaction would come from)."""
        if not self.views:
            return self.open_view(view, trigger_id=trigger_id)
        top = list(self.views.values())[-1]
        depth = sum(1 for v in self.views.values() if v.root_view_id == top.root_view_id)
        if depth >= MAX_VIEW_STACK:
            raise SlackError("push_limit_reached")
        pushed = self._new_view(view, root=top.root_view_id, previous=top.id)
        pushed.trigger_id = trigger_id
        self._publish(ChangeKind.VIEW_PUSHED, None, self.render_view(pushed))
        return pushed

    def close_view(self, view_id: str, *, stack: bool = False) -> None:
        """Close a view (a person cancelled it, or the app's ack closed it).

        With `stack`, its whole stack closes, as `response_action: clear` does; otherwise the
        view below it (if any) is shown again.
        """
        found = self.views.get(view_id)
        if found is None:
            raise SlackError("not_found")
        closing = [
            v.id for v in self.views.values() if stack and v.root_view_id == found.root_view_id
        ] or [view_id]
        for closed in closing:
            del self.views[closed]
            self._publish(ChangeKind.VIEW_CLOSED, None, {"id": closed})


class ChannelNames(MutableMapping[str, str]):
    """Channel id to name, a live view of the workspace (the old fake's `channels` dict).

    Setting an unknown id creates a public channel with that name; deleting removes it.
    """

    def __init__(self, workspace: Workspace) -> None:
        self._workspace = workspace

    def __getitem__(self, channel_id: str) -> str:
        return self._workspace.channels[channel_id].name

    def __setitem__(self, channel_id: str, name: str) -> None:
        found = self._workspace.find_channel(channel_id)
        if found is None:
            self._workspace.add_channel(channel_id, name)
        else:
            found.name = name

    def __delitem__(self, channel_id: str) -> None:
        del self._workspace.channels[channel_id]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._workspace.channels))

    def __len__(self) -> int:
        return len(self._workspace.channels)
