"""The one Slack adapter: every Web API call of the bot goes through `SlackGateway`.

It turns Slack's errors and silences into sentences (`UpstreamError`), looks up user groups
(the `Directory` port), invites in batches Slack accepts, and finds messages the bot posted by
their metadata. The feature adapters (`bot/deploy/adapter.py`, `bot/incident/adapter.py`)
render with their views and call this.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.blocks import Blocks, message_text
from pipeline.kernel.errors import UnknownGroup, UpstreamError
from pipeline.kernel.ports import NotInvited
from pipeline.kernel.text import Line, line

log = logging.getLogger(__name__)

# Slack: conversations.invite takes at most 100 users per call.
MAX_INVITE_USERS = 100
# How far back, and how many messages, a metadata search reads.
HISTORY_PAGE = 200
HISTORY_PAGES = 5
# Slack: conversations.members returns at most 1000 members a page.
MEMBER_PAGE = 1000
MEMBER_PAGES = 20

# usergroups.users.list's answer for a group ID the workspace does not have.
_NO_SUCH_GROUP = frozenset({"no_such_subteam"})

# Per-user refusals of conversations.invite: the others can still be invited.
_USER_ERRORS = frozenset(
    {
        "user_not_found",
        "users_not_found",
        "user_is_deactivated",
        "cant_invite",
        "cant_invite_self",
        "user_is_restricted",
        "user_is_ultra_restricted",
        "ura_max_channels",
        "not_allowed",
        "no_user",
    }
)


def slack_error(exc: SlackClientError) -> str:
    """Slack's error code for a failed call ("http_500" when it gave no JSON answer)."""
    if isinstance(exc, SlackApiError):
        data = exc.response.data if isinstance(exc.response.data, dict) else {}
        if data.get("error"):
            return str(data["error"])
        return f"http_{exc.response.status_code}"
    return "no_answer"


def slack_failure(
    exc: SlackClientError | aiohttp.ClientError | TimeoutError, doing: str
) -> UpstreamError:
    """A Slack failure as a sentence: what we tried (`doing`, our copy), why, what to do."""
    head = Line.literal(f"I could not {doing}:")
    if isinstance(exc, TimeoutError):
        return UpstreamError(head.then("Slack did not answer in time. Try again."))
    if not isinstance(exc, SlackClientError):
        return UpstreamError(
            head.then("Slack could not be reached ({why}). Try again.", why=type(exc).__name__)
        )
    error = slack_error(exc)
    data = (
        exc.response.data
        if isinstance(exc, SlackApiError) and isinstance(exc.response.data, dict)
        else {}
    )
    if error == "missing_scope":
        needed = str(data.get("needed") or "")
        scope = " `{needed}`" if needed else ""
        why = line(
            f"the Slack app lacks the{scope} permission (`missing_scope`). Ask a Slack admin "
            "to add it to the app (manifest.yml lists it) and reinstall it.",
            needed=needed,
        )
    elif error in ("user_not_found", "users_not_found"):
        why = line(
            "Slack does not know one of the users (`{error}`). Check the IDs under "
            "`[incidents.severities]` in chatops.toml, or the person you mentioned.",
            error=error,
        )
    elif error in ("not_in_channel", "channel_not_found"):
        why = line(
            "I am not in that channel (`{error}`). Invite me with `/invite @chatops`.", error=error
        )
    elif error.startswith("invalid_name"):
        why = line(
            "Slack refused the name (`{error}`). Check `incidents.channel_pattern`.", error=error
        )
    elif error == "restricted_action":
        why = line("the workspace settings forbid it (`restricted_action`). Ask a Slack admin.")
    elif error in ("ratelimited", "http_429"):
        why = line(
            "Slack is rate-limiting the bot right now (`{error}`). Try again in a minute.",
            error=error,
        )
    elif error.startswith("http_5") or error in (
        "fatal_error",
        "internal_error",
        "service_unavailable",
    ):
        why = line("Slack had a problem on its side (`{error}`). Try again.", error=error)
    else:
        why = line("Slack answered `{error}`.", error=error)
    return UpstreamError(Line(head.template + " " + why.template, why.slots))


# Slack's own words for a failure on its side (besides HTTP 5xx).
_SLACK_SIDE = frozenset({"fatal_error", "internal_error", "service_unavailable", "request_timeout"})


def _slack_cause(exc: BaseException) -> BaseException:
    return exc.__cause__ if isinstance(exc, UpstreamError) and exc.__cause__ else exc


def answer_lost(exc: BaseException) -> bool:
    """True when Slack may have done what was asked though no success came back: no answer in
    time, a dropped connection, or a failure on Slack's side. `exc` is the Slack error or the
    UpstreamError the gateway raised from it."""
    cause = _slack_cause(exc)
    if isinstance(cause, aiohttp.ClientError | TimeoutError):
        return True
    if isinstance(cause, SlackApiError):
        error = slack_error(cause)
        return error.startswith("http_5") or error in _SLACK_SIDE
    return False


def transient(exc: BaseException) -> bool:
    """True when the same call may succeed later: an answer lost, or a rate limit."""
    cause = _slack_cause(exc)
    if isinstance(cause, SlackApiError) and slack_error(cause) in ("ratelimited", "http_429"):
        return True
    return answer_lost(exc)


def retry_after_s(exc: BaseException) -> float:
    """The wait a rate-limited answer asks for (its Retry-After header), else 0."""
    cause = _slack_cause(exc)
    if not isinstance(cause, SlackApiError) or cause.response.status_code != 429:
        return 0.0
    for name, value in (cause.response.headers or {}).items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) and value else value
            try:
                return max(float(str(raw)), 0.0)
            except ValueError:
                return 0.0
    return 0.0


class SlackGateway:
    """Slack's Web API for the bot. Every method raises UpstreamError with a readable reason."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def call(self, doing: str, request: Awaitable[AsyncSlackResponse]) -> AsyncSlackResponse:
        """Await one Web API call; `doing` says what it was for ("post the plan card")."""
        try:
            return await request
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            raise slack_failure(exc, doing) from exc

    async def members_of(self, group_id: str) -> frozenset[str]:
        """The `Directory` port: who is in user group `group_id`. Raises UnknownGroup when
        Slack has no such group, UpstreamError when it cannot tell."""
        try:
            resp = await self.client.usergroups_users_list(usergroup=group_id)
        except SlackApiError as exc:
            if slack_error(exc) in _NO_SUCH_GROUP:
                raise UnknownGroup(group_id) from exc
            raise slack_failure(exc, f"list the members of user group {group_id}") from exc
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            raise slack_failure(exc, f"list the members of user group {group_id}") from exc
        return frozenset(resp.get("users") or [])

    async def is_in_channel(self, doing: str, *, channel: str, user: str) -> bool:
        """Whether `user` is a member of `channel` (conversations.members, page by page)."""
        cursor: str | None = None
        for _ in range(MEMBER_PAGES):
            kwargs: dict[str, Any] = {"channel": channel, "limit": MEMBER_PAGE}
            if cursor:
                kwargs["cursor"] = cursor
            resp = await self.call(doing, self.client.conversations_members(**kwargs))
            if user in (resp.get("members") or []):
                return True
            cursor = ((resp.get("response_metadata") or {}).get("next_cursor")) or None
            if not cursor:
                return False
        log.warning("gave up reading the members of %s after %d pages", channel, MEMBER_PAGES)
        return False

    async def post(
        self,
        doing: str,
        *,
        channel: str,
        text: str,
        blocks: Blocks | None = None,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
        broadcast: bool = False,
    ) -> str:
        """chat.postMessage; returns the message ts."""
        kwargs: dict[str, Any] = {"channel": channel, "text": message_text(text)}
        if blocks is not None:
            kwargs["blocks"] = blocks
        if thread_ts is not None:
            kwargs["thread_ts"] = thread_ts
            if broadcast:
                kwargs["reply_broadcast"] = True
        if metadata is not None:
            kwargs["metadata"] = metadata
        resp = await self.call(doing, self.client.chat_postMessage(**kwargs))
        return str(resp["ts"])

    async def update(
        self, doing: str, *, channel: str, ts: str, text: str, blocks: Blocks | None = None
    ) -> None:
        """chat.update; without `blocks`, a message of text only."""
        kwargs: dict[str, Any] = {"channel": channel, "ts": ts, "text": message_text(text)}
        if blocks is not None:
            kwargs["blocks"] = blocks
        await self.call(doing, self.client.chat_update(**kwargs))

    async def post_ephemeral(
        self, *, channel: str, user: str, text: str, blocks: Blocks | None = None
    ) -> None:
        await self.call(
            "tell you privately",
            self.client.chat_postEphemeral(
                channel=channel, user=user, text=message_text(text), blocks=blocks
            ),
        )

    async def invite(self, doing: str, channel: str, user_ids: Sequence[str]) -> list[NotInvited]:
        """Invite everyone who can be invited, 100 at a time; return who could not be, and why.

        A per-user refusal (unknown, deactivated, restricted user) does not stop the others;
        any other error (a missing scope, an archived channel) raises.
        """
        refused: list[NotInvited] = []
        for start in range(0, len(user_ids), MAX_INVITE_USERS):
            batch = list(user_ids[start : start + MAX_INVITE_USERS])
            refused += await self._invite_batch(doing, channel, batch)
        return refused

    async def _invite_batch(self, doing: str, channel: str, batch: list[str]) -> list[NotInvited]:
        try:
            resp = await self.client.conversations_invite(
                channel=channel, users=",".join(batch), force=True
            )
            return _per_user(resp.data if isinstance(resp.data, dict) else {})
        except SlackApiError as exc:
            error = slack_error(exc)
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            if data.get("errors"):
                return _per_user(data)
            if error == "already_in_channel":
                return []
            if error not in _USER_ERRORS:
                raise slack_failure(exc, doing) from exc
            if len(batch) == 1:
                return [NotInvited(batch[0], error)]
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            raise slack_failure(exc, doing) from exc
        # Slack refused the whole batch for one user's sake: find who, one at a time.
        refused: list[NotInvited] = []
        for user in batch:
            refused += await self._invite_batch(doing, channel, [user])
        return refused

    async def find_message(
        self, doing: str, *, channel: str, event_type: str, key: str, oldest: datetime | None = None
    ) -> str | None:
        """The ts of a recent message whose metadata is (`event_type`, `key`), newest first.

        Reads at most HISTORY_PAGES pages, back to `oldest` when given."""
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            kwargs: dict[str, Any] = {
                "channel": channel,
                "limit": HISTORY_PAGE,
                "include_all_metadata": True,
            }
            if oldest is not None:
                kwargs["oldest"] = f"{oldest.timestamp():.6f}"
            if cursor:
                kwargs["cursor"] = cursor
            resp = await self.call(doing, self.client.conversations_history(**kwargs))
            for message in resp.get("messages") or []:
                meta = message.get("metadata") or {}
                payload = meta.get("event_payload") or {}
                if meta.get("event_type") == event_type and payload.get("key") == key:
                    return str(message.get("ts"))
            cursor = ((resp.get("response_metadata") or {}).get("next_cursor")) or None
            if not cursor:
                return None
        log.warning(
            "gave up looking for %s %s in %s after %d pages",
            event_type,
            key,
            channel,
            HISTORY_PAGES,
        )
        return None


def _per_user(data: dict[str, Any]) -> list[NotInvited]:
    out = []
    for item in data.get("errors") or []:
        error = str(item.get("error") or "unknown_error")
        if error != "already_in_channel" and item.get("user"):
            out.append(NotInvited(str(item["user"]), error))
    return out
