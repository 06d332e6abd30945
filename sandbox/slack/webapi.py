"""The Web API methods of the local Slack: argument checks, scopes, and their effect on state.

`WebApi.call(method, args)` answers as Slack would (a JSON dict) or raises `SlackError`.
`WebApi.respond(...)` does what a post to a `response_url` does. No HTTP here: see `server`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from sandbox.slack import limits
from sandbox.slack.errors import SlackError
from sandbox.slack.models import Json
from sandbox.slack.scopes import METHOD_SCOPES, check_scope
from sandbox.slack.workspace import Workspace

MAX_HISTORY_LIMIT: Final = 999  # Slack: conversations.history returns at most 999 a page
DEFAULT_HISTORY_LIMIT: Final = 100  # Slack: conversations.history default page size
MAX_MEMBERS_LIMIT: Final = 1000  # Slack: conversations.members returns at most 1000 a page
DEFAULT_MEMBERS_LIMIT: Final = 100  # Slack: conversations.members default page size
_TRUE = (True, 1, "1", "true", "True")


@dataclass(frozen=True)
class LongText:
    """A message text over `limits.ADVISED_MESSAGE_TEXT`: Slack takes it but may cut it."""

    method: str
    channel: str | None
    length: int


@dataclass(frozen=True)
class ResponseTarget:
    """Where a `response_url` posts land: the channel, the user, the message clicked (if any)."""

    channel: str | None = None
    user: str | None = None
    message_ts: str | None = None


class Args:
    """A call's arguments, read the way Slack reads form fields and JSON bodies."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw

    def get(self, key: str) -> str | None:
        value = self.raw.get(key)
        return None if value is None else str(value)

    def required(self, key: str) -> str:
        value = self.get(key)
        if not value:
            raise SlackError("invalid_arguments", f"missing required field: {key}")
        return value

    def flag(self, key: str) -> bool:
        return self.raw.get(key) in _TRUE

    def number(self, key: str, default: int) -> int:
        value = self.raw.get(key)
        try:
            return default if value in (None, "") else int(str(value))
        except ValueError:
            raise SlackError("invalid_arguments", f"{key} must be a number") from None

    def decoded(self, key: str, error: str) -> Any:
        value = self.raw.get(key)
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise SlackError(error, f"{key} is not valid JSON") from None

    def blocks(self) -> list[Json] | None:
        blocks = self.decoded("blocks", "invalid_blocks_format")
        if blocks is None:
            return None
        try:
            limits.check_message_blocks(blocks)
        except limits.Invalid as exc:
            raise SlackError("invalid_blocks", str(exc), errors=[str(exc)]) from None
        return list(blocks)

    def home_view(self) -> Json:
        view = self.decoded("view", "invalid_arguments")
        if view is None:
            raise SlackError("invalid_arguments", "missing required field: view")
        if len(json.dumps(view)) > limits.MAX_VIEW_BYTES:
            raise SlackError("view_too_large")
        try:
            limits.check_home_view(view)
        except limits.InvalidBlocks as exc:
            raise SlackError("invalid_blocks", str(exc), errors=[str(exc)]) from None
        except limits.Invalid as exc:
            raise SlackError("invalid_arguments", str(exc)) from None
        return dict(view)

    def view(self) -> Json:
        view = self.decoded("view", "invalid_arguments")
        if view is None:
            raise SlackError("invalid_arguments", "missing required field: view")
        try:
            limits.check_view(view)
        except limits.Invalid as exc:
            raise SlackError("invalid_arguments", str(exc)) from None
        return dict(view)


class WebApi:
    """Every Web API method the local Slack serves (the keys of `METHOD_SCOPES`)."""

    def __init__(
        self, workspace: Workspace, *, scopes: Iterable[str] | None, base_url: Callable[[], str]
    ) -> None:
        self.workspace = workspace
        self.scopes = None if scopes is None else frozenset(scopes)
        self.long_texts: list[LongText] = []
        self._base_url = base_url
        self._methods: dict[str, Callable[[Args], Json]] = {
            "auth.test": self._auth_test,
            "apps.connections.open": self._connections_open,
            "chat.postMessage": self._post_message,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.update": self._update,
            "chat.delete": self._delete,
            "chat.getPermalink": self._permalink,
            "conversations.create": self._create,
            "conversations.invite": self._invite,
            "conversations.setTopic": self._set_topic,
            "conversations.archive": self._archive,
            "conversations.join": self._join,
            "conversations.info": self._info,
            "conversations.members": self._members,
            "conversations.history": self._history,
            "conversations.replies": self._replies,
            "pins.add": self._pin,
            "usergroups.users.list": self._group_members,
            "users.info": self._user_info,
            "users.list": self._users,
            "views.open": self._open_view,
            "views.update": self._update_view,
            "views.push": self._push_view,
            "views.publish": self._publish_view,
        }
        if self._methods.keys() != METHOD_SCOPES.keys():
            raise RuntimeError("WebApi serves exactly the methods METHOD_SCOPES lists.")

    def call(self, method: str, raw: Mapping[str, Any]) -> Json:
        """Answer `method` as Slack would, or raise `SlackError` with Slack's error code."""
        handler = self._methods.get(method)
        if handler is None:
            raise SlackError("unknown_method", req_method=method)
        args = Args(raw)
        check_scope(method, self.scopes, private=self._private(method, args))
        return {"ok": True, **handler(args)}

    def _private(self, method: str, args: Args) -> bool:
        if method == "conversations.create":
            return args.flag("is_private")
        channel = self.workspace.find_channel(args.get("channel") or "")
        return channel is not None and channel.is_private

    def _text(self, args: Args, *, max_len: int = limits.MAX_MESSAGE_TEXT) -> str:
        text = args.get("text") or args.get("markdown_text") or ""
        if not text and args.raw.get("blocks") is None and args.raw.get("attachments") is None:
            raise SlackError("no_text")
        if len(text) > max_len:
            raise SlackError("msg_too_long")
        return text

    def _note_long(self, method: str, channel: str | None, text: str) -> None:
        if len(text) > limits.ADVISED_MESSAGE_TEXT:
            self.long_texts.append(LongText(method, channel, len(text)))

    def _may_post(self, channel_id: str) -> None:
        channel = self.workspace.channel(channel_id)
        if self.workspace.bot_user in channel.members:
            return
        public_ok = self.scopes is None or "chat:write.public" in self.scopes
        if channel.is_private or not public_ok:
            raise SlackError("not_in_channel")

    # auth, apps

    def _auth_test(self, args: Args) -> Json:
        ws = self.workspace
        return {
            "url": "https://sandbox.slack.com/",
            "team": "Sandbox",
            "user": ws.user(ws.bot_user).name,
            "team_id": ws.team_id,
            "user_id": ws.bot_user,
            "bot_id": ws.bot_id,
        }

    def _connections_open(self, args: Args) -> Json:
        return {"url": self._base_url().replace("http", "ws", 1) + "/socket"}

    # chat

    def _post_message(self, args: Args) -> Json:
        channel = args.required("channel")
        text = self._text(args)
        blocks = args.blocks()
        metadata = self._metadata(args)
        self._may_post(channel)
        message = self.workspace.post(
            channel,
            user=self.workspace.bot_user,
            text=text,
            blocks=blocks,
            attachments=args.decoded("attachments", "invalid_attachments"),
            metadata=metadata,
            thread_ts=args.get("thread_ts") or None,
            reply_broadcast=args.flag("reply_broadcast"),
        )
        self._note_long("chat.postMessage", message.channel, text)
        return {"channel": message.channel, "ts": message.ts, "message": message.to_api()}

    def _metadata(self, args: Args) -> Json | None:
        metadata = args.decoded("metadata", "invalid_metadata_format")
        if metadata is None:
            return None
        if not isinstance(metadata, dict):
            raise SlackError("invalid_metadata_format")
        if not isinstance(metadata.get("event_type"), str) or not isinstance(
            metadata.get("event_payload"), dict
        ):
            raise SlackError("invalid_metadata_schema")
        return metadata

    def _post_ephemeral(self, args: Args) -> Json:
        channel, user = args.required("channel"), args.required("user")
        text = self._text(args)
        blocks = args.blocks()
        self._may_post(channel)
        posted = self.workspace.post_ephemeral(
            channel, user=user, text=text, blocks=blocks, thread_ts=args.get("thread_ts")
        )
        self._note_long("chat.postEphemeral", channel, text)
        return {"message_ts": posted.ts}

    def _update(self, args: Args) -> Json:
        channel, ts = args.required("channel"), args.required("ts")
        text = self._text(args, max_len=limits.MAX_UPDATE_TEXT)
        message = self.workspace.update(
            channel,
            ts,
            by=self.workspace.bot_user,
            text=text if "text" in args.raw else None,
            blocks=args.blocks(),
        )
        return {"channel": channel, "ts": ts, "text": message.text, "message": message.to_api()}

    def _delete(self, args: Args) -> Json:
        channel, ts = args.required("channel"), args.required("ts")
        self.workspace.delete(channel, ts, by=self.workspace.bot_user)
        return {"channel": channel, "ts": ts}

    def _permalink(self, args: Args) -> Json:
        channel, ts = args.required("channel"), args.required("message_ts")
        self.workspace.message(channel, ts)
        link = f"{self._base_url()}/archives/{channel}/p{ts.replace('.', '')}"
        return {"channel": channel, "permalink": link}

    # conversations

    def _channel_api(self, channel_id: str) -> Json:
        return self.workspace.channel(channel_id).to_api(bot_user=self.workspace.bot_user)

    def _create(self, args: Args) -> Json:
        name = args.get("name") or ""
        channel = self.workspace.create_channel(name, is_private=args.flag("is_private"))
        return {"channel": self._channel_api(channel.id)}

    def _invite(self, args: Args) -> Json:
        channel = args.required("channel")
        users = [u.strip() for u in (args.get("users") or "").split(",") if u.strip()]
        self.workspace.invite(channel, users, force=args.flag("force"))
        return {"channel": self._channel_api(channel)}

    def _set_topic(self, args: Args) -> Json:
        channel = args.required("channel")
        self.workspace.set_topic(channel, args.get("topic") or "")
        return {"channel": self._channel_api(channel)}

    def _archive(self, args: Args) -> Json:
        self.workspace.archive(args.required("channel"))
        return {}

    def _join(self, args: Args) -> Json:
        channel = args.required("channel")
        self.workspace.join(channel, self.workspace.bot_user)
        return {"channel": self._channel_api(channel)}

    def _info(self, args: Args) -> Json:
        return {"channel": self._channel_api(args.required("channel"))}

    def _members(self, args: Args) -> Json:
        channel = self.workspace.channel(args.required("channel"))
        if channel.is_private and self.workspace.bot_user not in channel.members:
            raise SlackError("channel_not_found")
        start = int(args.get("cursor") or 0)
        limit = min(args.number("limit", DEFAULT_MEMBERS_LIMIT), MAX_MEMBERS_LIMIT)
        page = channel.members[start : start + (limit or DEFAULT_MEMBERS_LIMIT)]
        end = start + len(page)
        more = end < len(channel.members)
        return {"members": page, "response_metadata": {"next_cursor": str(end) if more else ""}}

    def _history(self, args: Args) -> Json:
        channel = args.required("channel")
        latest = args.get("cursor") or args.get("latest")
        found = self.workspace.history(
            channel, oldest=args.get("oldest"), latest=latest, inclusive=args.flag("inclusive")
        )
        limit = min(args.number("limit", DEFAULT_HISTORY_LIMIT), MAX_HISTORY_LIMIT)
        page = found[: limit or DEFAULT_HISTORY_LIMIT]
        more = len(found) > len(page)
        metadata = args.flag("include_all_metadata")
        return {
            "messages": [self.workspace.render(m, include_metadata=metadata) for m in page],
            "has_more": more,
            "pin_count": len(self.workspace.channel(channel).pins),
            "response_metadata": {"next_cursor": page[-1].ts if more else ""},
        }

    def _replies(self, args: Args) -> Json:
        thread = self.workspace.replies(args.required("channel"), args.required("ts"))
        metadata = args.flag("include_all_metadata")
        return {
            "messages": [self.workspace.render(m, include_metadata=metadata) for m in thread],
            "has_more": False,
        }

    def _pin(self, args: Args) -> Json:
        self.workspace.pin(args.required("channel"), args.required("timestamp"))
        return {}

    # users and groups

    def _group_members(self, args: Args) -> Json:
        return {"users": self.workspace.group_members(args.required("usergroup"))}

    def _user_info(self, args: Args) -> Json:
        user = self.workspace.user(args.required("user"))
        return {"user": user.to_api(self.workspace.team_id)}

    def _users(self, args: Args) -> Json:
        team = self.workspace.team_id
        return {"members": [u.to_api(team) for u in self.workspace.users.values()]}

    # views

    def _open_view(self, args: Args) -> Json:
        trigger_id = args.required("trigger_id")
        opened = self.workspace.open_view(args.view(), trigger_id=trigger_id)
        return {"view": self.workspace.render_view(opened)}

    def _update_view(self, args: Args) -> Json:
        view_id, external_id = args.get("view_id"), args.get("external_id")
        if not view_id and not external_id:
            raise SlackError("invalid_arguments", "view_id or external_id is required")
        updated = self.workspace.update_view(
            args.view(), view_id=view_id, external_id=external_id, hash_=args.get("hash")
        )
        return {"view": self.workspace.render_view(updated)}

    def _push_view(self, args: Args) -> Json:
        trigger_id = args.required("trigger_id")
        pushed = self.workspace.push_view(args.view(), trigger_id=trigger_id)
        return {"view": self.workspace.render_view(pushed)}

    def _publish_view(self, args: Args) -> Json:
        user_id = args.required("user_id")
        view = args.home_view()
        published = self.workspace.publish_home(user_id, view, hash_=args.get("hash"))
        return {"view": self.workspace.render_view(published)}

    # response_url

    def respond(self, target: ResponseTarget, body: Mapping[str, Any]) -> None:
        """Do what a post to a `response_url` does; `SlackError` means HTTP 400 with its code."""
        args = Args(body)
        ws = self.workspace
        if target.message_ts and any(e.ts == target.message_ts for e in ws.ephemerals):
            # The click was on an ephemeral message: its response_url edits that message.
            if args.flag("delete_original"):
                ws.delete_ephemeral(target.message_ts)
                return
            if args.flag("replace_original"):
                ws.replace_ephemeral(target.message_ts, text=self._text(args), blocks=args.blocks())
                return
        if args.flag("delete_original"):
            if target.channel and target.message_ts:
                ws.delete(target.channel, target.message_ts, by=ws.bot_user)
            return
        text = self._text(args)
        blocks = args.blocks()
        thread_ts = args.get("thread_ts")
        if args.flag("replace_original") and target.channel and target.message_ts:
            ws.update(target.channel, target.message_ts, by=ws.bot_user, text=text, blocks=blocks)
        elif body.get("response_type") == "in_channel" and target.channel:
            ws.post(target.channel, user=ws.bot_user, text=text, blocks=blocks, thread_ts=thread_ts)
        else:
            ws.post_ephemeral(
                target.channel,
                user=target.user,
                text=text,
                blocks=blocks,
                thread_ts=thread_ts,
                via="response_url",
            )
        self._note_long("response_url", target.channel, text)
