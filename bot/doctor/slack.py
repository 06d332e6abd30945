"""The doctor's Slack checks: the token, its scopes against the manifest's, the bot in the
configured channels, and every user group and user the config names."""

from __future__ import annotations

from collections.abc import Iterable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.doctor.report import Finding, fail, not_checked, ok
from bot.slack import SlackGateway, slack_error
from pipeline.kernel.config import Config
from pipeline.kernel.errors import ChatOpsError, UnknownGroup
from pipeline.kernel.text import counted

AREA = "slack"
# Slack lists the token's scopes in this header of every Web API answer.
SCOPES_HEADER = "x-oauth-scopes"
# manifest.yml's bot scopes (tests/test_doctor.py keeps the two the same).
BOT_SCOPES = (
    "commands",
    "chat:write",
    "chat:write.public",
    "channels:manage",
    "channels:history",
    "groups:history",
    "pins:write",
    "usergroups:read",
    "channels:read",
    "users:read",
)
REINSTALL = (
    "add them under OAuth & Permissions > Bot Token Scopes (or update the app from manifest.yml) "
    "and reinstall the app to the workspace."
)


async def slack_findings(
    client: AsyncWebClient, config: Config, *, manifest_scopes: Iterable[str]
) -> list[Finding]:
    """Every Slack check; stops after the token check when the token does not work."""
    try:
        auth = await client.auth_test()
    except SlackApiError as exc:
        return [
            fail(
                AREA,
                f"Slack refused the bot token (`{slack_error(exc)}`).",
                "copy the Bot User OAuth Token (xoxb-…) from OAuth & Permissions into "
                "SLACK_BOT_TOKEN.",
            )
        ]
    except Exception as exc:  # noqa: BLE001 - any failure to reach Slack is this finding
        return [
            fail(
                AREA,
                f"Slack could not be reached ({type(exc).__name__}).",
                "check SLACK_API_URL and the network.",
            )
        ]
    bot_user = str(auth.get("user_id"))
    found = [ok(AREA, f"the token works: bot <@{bot_user}> in {auth.get('team')}.")]
    found.append(_scopes(auth.headers, manifest_scopes))
    slack = SlackGateway(client)
    found += [await _channel(client, c, bot_user) for c in _channels(config)]
    found += [await _group(slack, g, keys) for g, keys in config.user_groups().items()]
    found += [await _user(client, u, keys) for u, keys in named_users(config).items()]
    return found


def _scopes(headers: dict[str, object], wanted: Iterable[str]) -> Finding:
    header = {k.lower(): v for k, v in headers.items()}.get(SCOPES_HEADER)
    if header is None:
        return not_checked(AREA, f"scopes: Slack sent no `{SCOPES_HEADER}` header.")
    value = header[0] if isinstance(header, list) else header
    granted = {s.strip() for s in str(value).split(",") if s.strip()}
    missing = sorted(set(wanted) - granted)
    if missing:
        return fail(AREA, f"the token lacks the scopes {', '.join(missing)}.", REINSTALL)
    return ok(AREA, f"the token has every scope manifest.yml asks for ({len(granted)} granted).")


def _channels(config: Config) -> list[str]:
    return [config.incidents.channel] if config.incidents.channel else []


async def _channel(client: AsyncWebClient, channel: str, bot_user: str) -> Finding:
    try:
        info = (await client.conversations_info(channel=channel)).get("channel") or {}
    except SlackApiError as exc:
        return fail(
            AREA,
            f"Slack has no channel {channel} the bot can see (`{slack_error(exc)}`), named in "
            "incidents.channel.",
            "put the channel's ID (C…) in incidents.channel, and invite the bot if it is private.",
        )
    name = info.get("name") or channel
    if not info.get("is_member"):
        return fail(
            AREA,
            f"the bot is not in #{name} ({channel}), where incidents are announced.",
            f"type `/invite <@{bot_user}>` in #{name}.",
        )
    return ok(AREA, f"the bot is in #{name} ({channel}).")


async def _group(slack: SlackGateway, group: str, keys: list[str]) -> Finding:
    try:
        members = await slack.members_of(group)
    except UnknownGroup:
        return fail(
            AREA,
            f"Slack has no user group {group} (named in {', '.join(keys)}).",
            "fix the ID in the config, or create the group in Slack.",
        )
    except ChatOpsError as exc:
        return not_checked(AREA, f"user group {group}: {exc.user_message}")
    return ok(AREA, f"user group {group} exists ({counted(len(members), 'member')}).")


def named_users(config: Config) -> dict[str, list[str]]:
    """Every user ID (U…/W…) the config names, with the keys that name it."""
    return config.named_ids("U", "W")


async def _user(client: AsyncWebClient, user: str, keys: list[str]) -> Finding:
    try:
        info = (await client.users_info(user=user)).get("user") or {}
    except SlackApiError as exc:
        return fail(
            AREA,
            f"Slack has no user {user} (`{slack_error(exc)}`; named in {', '.join(keys)}).",
            "fix the ID in the config (a member ID, from their profile's ⋮ menu).",
        )
    if info.get("deleted"):
        return fail(
            AREA,
            f"user {user} is deactivated (named in {', '.join(keys)}).",
            "take them out of the config, or name who took over.",
        )
    return ok(AREA, f"user {user} exists.")
