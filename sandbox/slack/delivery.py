"""Slack's side of an app's Request URL: what people do, sent to the app as Slack sends it.

`AppDelivery` signs each request with the app's signing secret and POSTs it to the app's
`/slack/events`: slash commands and button clicks (with a `response_url` this local Slack
serves, aimed at the channel, the person and the message clicked), clicks on the App Home,
view submissions, and the Events API's `app_home_opened`. It
reads the ack as Slack does: a command's ack body is shown to the person as an ephemeral
message, and a submission's ack closes the modal or leaves it open with the errors it names.
The test driver and the sandbox page both send through it.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import itertools
import json
import time
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

import aiohttp

from sandbox.slack.errors import SlackError
from sandbox.slack.models import Json
from sandbox.slack.server import LocalSlack

REQUEST_TIMEOUT_S: Final = 10.0  # Slack gives up on an app after 3 s; a sandbox may be slower
FORM: Final = "application/x-www-form-urlencoded"
LARGE_BODY: Final = 1024 * 1024


def sign(body: str | bytes, *, secret: str, timestamp: int | str | None = None) -> dict[str, str]:
    """The two headers Slack adds to every request: the timestamp and the v0 signature.

    `timestamp` may be any text, to see what the app makes of a malformed one."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    raw = body.encode() if isinstance(body, str) else body
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + raw, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


@dataclass(frozen=True)
class Ack:
    """The app's answer to one request: the HTTP status and the body (JSON decoded, or None)."""

    status: int
    body: Any

    @property
    def errors(self) -> dict[str, str]:
        """A view submission's field errors (`response_action: errors`), by block_id."""
        if isinstance(self.body, dict) and self.body.get("response_action") == "errors":
            return {str(k): str(v) for k, v in (self.body.get("errors") or {}).items()}
        return {}


class AppDelivery:
    """Sends people's slash commands, clicks and form submissions to one app, signed.

    `request_url` is the app's events URL; `signing_secret` the app's secret. Each request gets
    a fresh `response_url` and `trigger_id`; `trigger_user` tells who a trigger belongs to, so
    a modal the app opens with it is shown to that person.
    """

    def __init__(
        self,
        slack: LocalSlack,
        *,
        request_url: str,
        signing_secret: str,
        team_id: str = "T1",
        api_app_id: str = "A1",
    ) -> None:
        self.slack = slack
        self.request_url = request_url
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.api_app_id = api_app_id
        self.trigger_user: dict[str, str] = {}
        self._session: aiohttp.ClientSession | None = None
        self._ids = itertools.count(1)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _session_or_new(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
            )
        return self._session

    async def post(self, body: str | bytes, *, content_type: str, headers: dict[str, str]) -> Ack:
        """POST `body` as it is (no signature added) and read the ack."""
        raw = body.encode() if isinstance(body, str) else body
        # aiohttp warns when a large body is sent as bytes rather than a stream.
        data = io.BytesIO(raw) if len(raw) > LARGE_BODY else raw
        async with self._session_or_new().post(
            self.target(), data=data, headers={"Content-Type": content_type, **headers}
        ) as resp:
            text = await resp.text()
        if not text.strip():
            return Ack(resp.status, None)
        try:
            return Ack(resp.status, json.loads(text))
        except ValueError:
            return Ack(resp.status, text)

    def target(self) -> str:
        """Where the next request goes: the app's events URL (a load balancer picks one of
        several: `sandbox.replicas.BalancedDelivery`)."""
        return self.request_url

    async def send_form(self, fields: dict[str, str]) -> Ack:
        body = urlencode(fields)
        return await self.post(body, content_type=FORM, headers=self.sign(body))

    def sign(self, body: str) -> dict[str, str]:
        return sign(body, secret=self.signing_secret)

    def new_trigger(self, user: str) -> str:
        trigger = f"{next(self._ids)}.{int(time.time())}.sandbox"
        self.trigger_user[trigger] = user
        return trigger

    def _user_name(self, user: str) -> str:
        known = self.slack.workspace.users.get(user)
        return known.name if known is not None else user.lower()

    def _channel_name(self, channel: str) -> str:
        known = self.slack.workspace.find_channel(channel)
        return known.name if known is not None else channel.lower()

    async def command(
        self,
        command: str,
        text: str,
        *,
        user: str,
        channel: str,
        trigger_id: str | None = None,
        channel_name: str | None = None,
    ) -> Ack:
        """A slash command typed by `user` in `channel`; its ack text is shown to them alone."""
        name = f"command-{next(self._ids)}"
        ack = await self.send_form(
            {
                "token": "legacy",
                "team_id": self.team_id,
                "team_domain": "sandbox",
                "channel_id": channel,
                "channel_name": channel_name or self._channel_name(channel),
                "user_id": user,
                "user_name": self._user_name(user),
                "command": command,
                "text": text,
                "api_app_id": self.api_app_id,
                "response_url": self.slack.response_url(name, channel=channel, user=user),
                "trigger_id": trigger_id or self.new_trigger(user),
            }
        )
        self._show(ack, channel=channel, user=user)
        return ack

    def _show(self, ack: Ack, *, channel: str, user: str) -> None:
        """Show an ack's text to the person, as Slack shows a command's immediate answer."""
        body = ack.body
        if ack.status != 200 or not isinstance(body, dict):
            return
        text, blocks = str(body.get("text") or ""), body.get("blocks")
        if not text and not blocks:
            return
        try:
            self.slack.workspace.post_ephemeral(
                channel, user=user, text=text, blocks=blocks, via="ack"
            )
        except SlackError:
            # An archived or unknown channel: Slack would not have let anyone type there.
            return

    async def block_actions(
        self,
        action: Json,
        *,
        user: str,
        channel: str,
        message: Json | None,
        trigger_id: str | None = None,
        ephemeral_ts: str | None = None,
    ) -> Ack:
        """A click on an interactive element of `message` (as the Web API shows it), or of
        the ephemeral message `ephemeral_ts`: Slack then sends no `message`, marks the
        container `is_ephemeral`, and its `response_url` edits that ephemeral message."""
        ts = ephemeral_ts or (message.get("ts") if message else None)
        name = f"action-{next(self._ids)}"
        payload: Json = {
            "type": "block_actions",
            "team": {"id": self.team_id, "domain": "sandbox"},
            "api_app_id": self.api_app_id,
            "user": {"id": user, "name": self._user_name(user), "team_id": self.team_id},
            "channel": {"id": channel, "name": self._channel_name(channel)},
            "container": {
                "type": "message",
                "message_ts": ts,
                "channel_id": channel,
                **({"is_ephemeral": True} if ephemeral_ts else {}),
            },
            "response_url": self.slack.response_url(
                name, channel=channel, user=user, message_ts=ts
            ),
            "trigger_id": trigger_id or self.new_trigger(user),
            "actions": [{"action_ts": f"{time.time():.6f}", **action}],
        }
        if message is not None:
            payload["message"] = message
        return await self.send_form({"payload": json.dumps(payload)})

    async def app_home_opened(self, user: str) -> Ack:
        """`user` opens the app's Home tab: the Events API's `app_home_opened`, as JSON, with
        the Home view published to them so far (if any), as Slack sends it."""
        event: Json = {
            "type": "app_home_opened",
            "user": user,
            "channel": f"D{user.lstrip('UW')}",
            "tab": "home",
            "event_ts": f"{time.time():.6f}",
        }
        home = self.slack.workspace.home_views.get(user)
        if home is not None:
            event["view"] = self.slack.workspace.render_view(home)
        body = json.dumps(
            {
                "token": "legacy",
                "team_id": self.team_id,
                "api_app_id": self.api_app_id,
                "event": event,
                "type": "event_callback",
                "event_id": f"Ev{next(self._ids):08d}",
                "event_time": int(time.time()),
            }
        )
        return await self.post(body, content_type="application/json", headers=self.sign(body))

    async def home_action(self, action: Json, *, user: str, trigger_id: str | None = None) -> Ack:
        """A click on an interactive element of `user`'s Home tab: Slack sends the view instead
        of a message and a channel, and no `response_url` (a Home tab has none)."""
        home = self.slack.workspace.home_views.get(user)
        if home is None:
            raise SlackError("not_found", f"{user} has no Home tab published")
        view = self.slack.workspace.render_view(home)
        payload: Json = {
            "type": "block_actions",
            "team": {"id": self.team_id, "domain": "sandbox"},
            "api_app_id": self.api_app_id,
            "user": {"id": user, "name": self._user_name(user), "team_id": self.team_id},
            "container": {"type": "view", "view_id": home.id},
            "trigger_id": trigger_id or self.new_trigger(user),
            "view": view,
            "actions": [{"action_ts": f"{time.time():.6f}", **action}],
        }
        return await self.send_form({"payload": json.dumps(payload)})

    async def view_submission(self, view: Json, values: Json, *, user: str) -> Ack:
        """Submit `view` with `values` (block_id -> action_id -> element state).

        As Slack does with the ack: errors leave the modal open; `clear` closes its whole
        stack; any other answer closes this view.
        """
        payload = {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": "sandbox"},
            "api_app_id": self.api_app_id,
            "user": {"id": user, "name": self._user_name(user), "team_id": self.team_id},
            "trigger_id": self.new_trigger(user),
            "view": {**view, "state": {"values": values}},
        }
        ack = await self.send_form({"payload": json.dumps(payload)})
        view_id = str(view.get("id") or "")
        workspace = self.slack.workspace
        if ack.status == 200 and not ack.errors and view_id in workspace.views:
            body = ack.body if isinstance(ack.body, dict) else {}
            workspace.close_view(view_id, stack=body.get("response_action") == "clear")
        return ack
