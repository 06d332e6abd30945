"""manifest.yml is a valid Slack app manifest and declares what the code uses."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from slack_sdk.web.async_client import AsyncWebClient

from bot.server import EVENTS_PATH

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT.parent / "shared" / "slack" / "manifest.schema.json"

# The bot scopes each Web API method needs, as the bot uses it (api.slack.com/methods/<method>).
# conversations.history reads war rooms (public) and deploy channels (public or private);
# chat.postMessage posts plan cards in public channels the bot has not joined.
# A method the code calls that is missing here fails the test until it is added.
SCOPES_OF_METHOD: dict[str, tuple[str, ...]] = {
    "chat_postMessage": ("chat:write", "chat:write.public"),
    "chat_postEphemeral": ("chat:write",),
    "chat_update": ("chat:write",),
    "usergroups_users_list": ("usergroups:read",),
    "conversations_create": ("channels:manage",),
    "conversations_invite": ("channels:manage",),
    "conversations_setTopic": ("channels:manage",),
    "conversations_archive": ("channels:manage",),
    "conversations_history": ("channels:history", "groups:history"),
    "pins_add": ("pins:write",),
    "conversations_members": ("channels:read",),
    "views_open": (),
    "chat_getPermalink": (),
    "views_publish": (),
    "auth_test": (),
    "conversations_info": ("channels:read",),
    "users_info": ("users:read",),
}
# Not a Web API method: the slash commands themselves.
SCOPES_WITHOUT_A_METHOD = {"commands"}

_COMMAND = re.compile(r"""\.command\(\s*app,\s*["'](/[\w-]+)["']""")
_EVENT = re.compile(r"""\.event\(\s*["'](\w+)["']""")  # app.event("app_home_opened")
_CLIENT_CALL = re.compile(r"client\.([a-z]+_[A-Za-z_]+)\(")


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _bot_sources() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "bot").rglob("*.py")))


def _errors(validator: jsonschema.Draft7Validator, manifest: dict[str, Any]) -> list[str]:
    return [
        f"{'.'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
        for e in validator.iter_errors(manifest)
    ]


def test_the_manifest_is_valid_against_slacks_schema(
    validator: jsonschema.Draft7Validator, manifest: dict[str, Any]
) -> None:
    assert _errors(validator, manifest) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("display_information", "name"), ""),
        (("features", "slash_commands", 0, "command"), "deploy"),
        (("settings", "interactivity", "request_url"), "chatops.example.com/slack/events"),
        (("settings", "socket_mode_enabled"), "no"),
    ],
)
def test_the_schema_check_catches_a_broken_manifest(
    validator: jsonschema.Draft7Validator,
    manifest: dict[str, Any],
    path: tuple[str | int, ...],
    value: object,
) -> None:
    """Guards against a validator that passes everything (a wrong draft or an empty schema)."""
    broken = copy.deepcopy(manifest)
    node: Any = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value

    assert _errors(validator, broken) != []


def test_flipping_the_manifest_to_socket_mode_as_documented_stays_valid(
    validator: jsonschema.Draft7Validator, manifest: dict[str, Any]
) -> None:
    socket = copy.deepcopy(manifest)
    socket["settings"]["socket_mode_enabled"] = True
    for command in socket["features"]["slash_commands"]:
        del command["url"]
    del socket["settings"]["interactivity"]["request_url"]
    del socket["settings"]["event_subscriptions"]["request_url"]

    assert _errors(validator, socket) == []


def test_http_mode_gives_every_slash_command_a_request_url_on_the_events_path(
    manifest: dict[str, Any],
) -> None:
    assert manifest["settings"]["socket_mode_enabled"] is False
    urls = {c["command"]: c.get("url") for c in manifest["features"]["slash_commands"]}

    assert {cmd: url for cmd, url in urls.items() if not _is_events_url(url)} == {}


def test_http_mode_sends_interactivity_to_the_events_path(manifest: dict[str, Any]) -> None:
    interactivity = manifest["settings"]["interactivity"]

    assert interactivity["is_enabled"] is True
    assert _is_events_url(interactivity.get("request_url"))


def test_http_mode_sends_events_to_the_events_path(manifest: dict[str, Any]) -> None:
    assert _is_events_url(manifest["settings"]["event_subscriptions"].get("request_url"))


def test_every_event_the_code_listens_to_is_subscribed(manifest: dict[str, Any]) -> None:
    listened = set(_EVENT.findall(_bot_sources()))
    subscribed = set(manifest["settings"]["event_subscriptions"]["bot_events"])

    assert "app_home_opened" in listened
    assert listened == subscribed


def test_the_home_tab_the_bot_publishes_is_enabled(manifest: dict[str, Any]) -> None:
    assert "views_publish" in _CLIENT_CALL.findall(_bot_sources())
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True


def _is_events_url(url: str | None) -> bool:
    return url is not None and url.startswith("https://") and url.endswith(EVENTS_PATH)


def test_the_manifest_declares_deploy_rollback_and_incident(manifest: dict[str, Any]) -> None:
    declared = {c["command"] for c in manifest["features"]["slash_commands"]}

    assert {"/deploy", "/rollback", "/incident"} <= declared


def test_every_slash_command_the_code_registers_is_declared(manifest: dict[str, Any]) -> None:
    registered = set(_COMMAND.findall(_bot_sources()))
    declared = {c["command"] for c in manifest["features"]["slash_commands"]}

    assert "/deploy" in registered
    assert registered - declared == set()


def test_every_slash_command_has_a_usage_hint(manifest: dict[str, Any]) -> None:
    missing = [
        c["command"] for c in manifest["features"]["slash_commands"] if not c.get("usage_hint")
    ]

    assert missing == []


@pytest.mark.parametrize(
    ("method", "scope"),
    [
        ("chat.postMessage", "chat:write"),
        ("usergroups.users.list", "usergroups:read"),
        ("conversations.create", "channels:manage"),
        ("pins.add", "pins:write"),
        ("slash commands", "commands"),
    ],
)
def test_the_bot_scopes_cover_the_features(
    manifest: dict[str, Any], method: str, scope: str
) -> None:
    assert scope in manifest["oauth_config"]["scopes"]["bot"], f"{method} needs {scope}"


def test_the_manifest_asks_for_exactly_the_scopes_the_code_needs(
    manifest: dict[str, Any],
) -> None:
    called = {m for m in _CLIENT_CALL.findall(_bot_sources()) if hasattr(AsyncWebClient, m)}
    unknown = sorted(called - SCOPES_OF_METHOD.keys())
    needed = {scope for m in called for scope in SCOPES_OF_METHOD.get(m, ())}

    assert "chat_postMessage" in called
    assert unknown == [], f"add the scopes these need to SCOPES_OF_METHOD: {unknown}"
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == needed | SCOPES_WITHOUT_A_METHOD


def test_org_deploy_and_token_rotation_are_off(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]

    assert (settings["org_deploy_enabled"], settings["token_rotation_enabled"]) == (False, False)
