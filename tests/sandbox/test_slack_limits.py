"""Every limit the local Slack enforces, through the real AsyncWebClient: at the limit Slack takes
the call; one over, it answers Slack's own error code. One table row per rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from sandbox.slack import LocalSlack

CHANNEL = "CGENERAL"
WAR_ROOM_NAME = "war-room"
BOT_TS = "1700000000.000001"  # the bot's message seeded in CGENERAL, the first ts of the fake
WAR_ROOM = "C00000001"  # the first channel the fake creates: the seeded war room
URL = "https://x.example/"
CREATE, INVITE = "conversations.create", "conversations.invite"

Json = dict[str, Any]


@dataclass(frozen=True)
class Request:
    """One call: a Web API method through the typed client (`client`), the raw `api_call`, or
    a `response_url` post (`webhook`)."""

    method: str
    kwargs: Json
    via: str = "client"


@dataclass(frozen=True)
class Rule:
    name: str
    ok: Request
    bad: Request
    error: str
    scopes: tuple[str, ...] | None = None


Build = Callable[[int], Json]
MESSAGE = ("chat.postMessage", "invalid_blocks")
MODAL = ("views.open", "invalid_arguments")


def sized(name: str, limit: int, build: Build, kind: tuple[str, str] = MESSAGE) -> Rule:
    """A size rule: `build(limit)` is taken, `build(limit + 1)` refused with the kind's error."""
    method, error = kind
    via = "webhook" if method == "response_url" else "client"
    ok, bad = Request(method, build(limit), via), Request(method, build(limit + 1), via)
    return Rule(name, ok, bad, error)


def pair(
    name: str, ok: Json, bad: Json, kind: tuple[str, str] = MESSAGE, via: str = "client"
) -> Rule:
    method, error = kind
    return Rule(name, Request(method, ok, via), Request(method, bad, via), error)


def plain(text: str, **extra: Any) -> Json:
    return {"type": "plain_text", "text": text, **extra}


def mrkdwn(text: str, **extra: Any) -> Json:
    return {"type": "mrkdwn", "text": text, **extra}


def divider(block_id: str | None = None) -> Json:
    return {"type": "divider"} | ({"block_id": block_id} if block_id else {})


def section(text: str) -> Json:
    return {"type": "section", "text": mrkdwn(text)}


def context(*elements: Json) -> Json:
    return {"type": "context", "elements": list(elements)}


def actions(*elements: Json) -> Json:
    return {"type": "actions", "elements": list(elements)}


def button(**extra: Any) -> Json:
    return {"type": "button", "action_id": "go", "text": plain("Go"), **extra}


def confirm(**extra: Any) -> Json:
    return {
        "title": plain("Sure?"),
        "text": plain("Really."),
        "confirm": plain("Yes"),
        "deny": plain("No"),
        **extra,
    }


def option(text: str = "One", value: str = "one") -> Json:
    return {"text": plain(text), "value": value}


def select(*options: Json) -> Json:
    return {"type": "static_select", "action_id": "pick", "options": list(options)}


def message(*blocks: Json) -> Json:
    return {"channel": CHANNEL, "text": "fallback", "blocks": list(blocks)}


def update(*blocks: Json) -> Json:
    return {"channel": CHANNEL, "ts": BOT_TS, "text": "fallback", "blocks": list(blocks)}


def text_input(**extra: Any) -> Json:
    return {
        "type": "input",
        "block_id": "field",
        "label": plain("Field"),
        "element": {"type": "plain_text_input", "action_id": "value", **extra},
    }


def modal(*blocks: Json, **extra: Any) -> Json:
    view = {"type": "modal", "title": plain("Title"), "submit": plain("Send"), "blocks": [*blocks]}
    return {"trigger_id": "T-trigger", "view": view | extra}


def dividers(n: int) -> list[Json]:
    return [divider() for _ in range(n)]


def users(n: int) -> str:
    return ",".join(f"U{i:04d}X" for i in range(n))


def without_submit(request: Json) -> Json:
    view = {k: v for k, v in request["view"].items() if k != "submit"}
    return request | {"view": view}


RULES = [
    sized("blocks per message", 50, lambda n: message(*dividers(n))),
    sized(
        "blocks per chat.update",
        50,
        lambda n: update(*dividers(n)),
        ("chat.update", "invalid_blocks"),
    ),
    sized(
        "blocks per ephemeral",
        50,
        lambda n: message(*dividers(n)) | {"user": "UALICE"},
        ("chat.postEphemeral", "invalid_blocks"),
    ),
    sized(
        "blocks per response_url post",
        50,
        lambda n: {"text": "fallback", "blocks": dividers(n)},
        ("response_url", "invalid_blocks"),
    ),
    sized("blocks per modal (views.open)", 100, lambda n: modal(*dividers(n)), MODAL),
    sized(
        "blocks per modal (views.update)",
        100,
        lambda n: {"view_id": "V00000001", "view": modal(*dividers(n))["view"]},
        ("views.update", "invalid_arguments"),
    ),
    sized(
        "blocks per modal (views.push)",
        100,
        lambda n: modal(*dividers(n)),
        ("views.push", "invalid_arguments"),
    ),
    sized("section text", 3000, lambda n: message(section("s" * n))),
    sized(
        "section fields", 10, lambda n: message({"type": "section", "fields": [mrkdwn("f")] * n})
    ),
    sized(
        "section field text",
        2000,
        lambda n: message({"type": "section", "fields": [mrkdwn("f" * n)]}),
    ),
    sized("header text", 150, lambda n: message({"type": "header", "text": plain("h" * n)})),
    pair(
        "header text is plain_text",
        message({"type": "header", "text": plain("Deploy")}),
        message({"type": "header", "text": mrkdwn("Deploy")}),
    ),
    sized("context elements", 10, lambda n: message(context(*[mrkdwn("c")] * n))),
    sized(
        "actions elements",
        25,
        lambda n: message(actions(*[button(action_id=f"a{i}") for i in range(n)])),
    ),
    sized("any text object", 3000, lambda n: message(context(mrkdwn("c" * n)))),
    pair(
        "a text object has a character", message(context(mrkdwn("c"))), message(context(mrkdwn("")))
    ),
    pair(
        "emoji only on plain_text",
        message(context(plain("c", emoji=True))),
        message(context(mrkdwn("c", emoji=True))),
    ),
    sized("button text", 75, lambda n: message(actions(button(text=plain("b" * n))))),
    sized("button value", 2000, lambda n: message(actions(button(value="v" * n)))),
    sized("button url", 3000, lambda n: message(actions(button(url=URL + "u" * (n - len(URL)))))),
    sized("block_id", 255, lambda n: message(divider("b" * n))),
    pair(
        "block_id is unique within the message",
        message(divider("one"), divider("two")),
        message(divider("one"), divider("one")),
    ),
    pair(
        "block_id is unique within the view",
        modal(divider("one"), divider("two")),
        modal(divider("one"), divider("one")),
        MODAL,
    ),
    sized("action_id", 255, lambda n: message(actions(button(action_id="a" * n)))),
    pair(
        "action_id is unique within its block",
        message(actions(button(action_id="go")), actions(button(action_id="go"))),
        message(actions(button(action_id="go"), button(action_id="go"))),
    ),
    sized(
        "confirm title",
        100,
        lambda n: message(actions(button(confirm=confirm(title=plain("t" * n))))),
    ),
    pair(
        "confirm title is plain_text",
        message(actions(button(confirm=confirm(title=plain("Sure?"))))),
        message(actions(button(confirm=confirm(title=mrkdwn("Sure?"))))),
    ),
    sized(
        "confirm text",
        300,
        lambda n: message(actions(button(confirm=confirm(text=plain("t" * n))))),
    ),
    pair(
        "confirm text is plain_text",
        message(actions(button(confirm=confirm(text=plain("Deploy *now*?"))))),
        message(actions(button(confirm=confirm(text=mrkdwn("Deploy *now*?"))))),
    ),
    sized(
        "confirm button",
        30,
        lambda n: message(actions(button(confirm=confirm(confirm=plain("c" * n))))),
    ),
    sized(
        "deny button", 30, lambda n: message(actions(button(confirm=confirm(deny=plain("d" * n)))))
    ),
    sized("option text", 75, lambda n: message(actions(select(option(text="o" * n))))),
    sized("option value", 75, lambda n: message(actions(select(option(value="v" * n))))),
    sized(
        "options per static_select",
        100,
        lambda n: message(actions(select(*[option(value=f"v{i}") for i in range(n)]))),
    ),
    sized("modal title", 24, lambda n: modal(title=plain("t" * n)), MODAL),
    pair(
        "modal title is plain_text",
        modal(title=plain("Title")),
        modal(title=mrkdwn("Title")),
        MODAL,
    ),
    sized("modal submit", 24, lambda n: modal(submit=plain("s" * n)), MODAL),
    sized("modal close", 24, lambda n: modal(close=plain("c" * n)), MODAL),
    pair(
        "submit is required with input blocks",
        modal(text_input()),
        without_submit(modal(text_input())),
        MODAL,
    ),
    sized("private_metadata", 3000, lambda n: modal(private_metadata="m" * n), MODAL),
    sized("callback_id", 255, lambda n: modal(callback_id="c" * n), MODAL),
    sized("input label", 2000, lambda n: modal(text_input() | {"label": plain("l" * n)}), MODAL),
    sized("input hint", 2000, lambda n: modal(text_input() | {"hint": plain("h" * n)}), MODAL),
    sized("placeholder", 150, lambda n: modal(text_input(placeholder=plain("p" * n))), MODAL),
    sized("plain_text_input max_length", 3000, lambda n: modal(text_input(max_length=n)), MODAL),
    sized(
        "chat.update text",
        4000,
        lambda n: {"channel": CHANNEL, "ts": BOT_TS, "text": "t" * n},
        ("chat.update", "msg_too_long"),
    ),
    sized(
        "chat.postMessage text",
        40_000,
        lambda n: {"channel": CHANNEL, "text": "t" * n},
        ("chat.postMessage", "msg_too_long"),
    ),
    sized(
        "channel name length", 80, lambda n: {"name": "c" * n}, (CREATE, "invalid_name_maxlength")
    ),
    pair(
        "channel name is lowercase",
        {"name": "inc-2026-auth"},
        {"name": "inc-2026-Auth"},
        (CREATE, "invalid_name_specials"),
    ),
    pair(
        "channel name has no spaces or punctuation",
        {"name": "inc_2026-auth"},
        {"name": "inc 2026 auth!"},
        (CREATE, "invalid_name_specials"),
    ),
    pair(
        "channel name is required", {"name": "a"}, {"name": ""}, (CREATE, "invalid_name_required")
    ),
    pair(
        "channel name is not taken",
        {"name": "war-room-2"},
        {"name": WAR_ROOM_NAME},
        (CREATE, "name_taken"),
    ),
    sized(
        "topic",
        250,
        lambda n: {"channel": WAR_ROOM, "topic": "t" * n},
        ("conversations.setTopic", "too_long"),
    ),
    sized(
        "users per invite",
        100,
        lambda n: {"channel": WAR_ROOM, "users": users(n)},
        (INVITE, "too_many_users"),
    ),
    pair(
        "invited users exist",
        {"channel": WAR_ROOM, "users": "UBOB"},
        {"channel": WAR_ROOM, "users": "UBOB,UNOBODY"},
        (INVITE, "user_not_found"),
    ),
    pair(
        "invited users are not members yet",
        {"channel": WAR_ROOM, "users": "UBOB"},
        {"channel": WAR_ROOM, "users": "UALICE"},
        (INVITE, "already_in_channel"),
    ),
    Rule(
        "the method's scope is granted",
        Request("chat.postMessage", {"channel": CHANNEL, "text": "hi"}),
        Request(CREATE, {"name": "inc-2026-auth"}),
        "missing_scope",
        scopes=("chat:write", "chat:write.public"),
    ),
    Rule(
        "the method exists",
        Request("auth.test", {}, "api_call"),
        Request("chat.frobnicate", {}, "api_call"),
        "unknown_method",
    ),
    pair(
        "chat.postMessage needs a channel",
        {"channel": CHANNEL, "text": "hi"},
        {"text": "hi"},
        ("chat.postMessage", "invalid_arguments"),
        via="api_call",
    ),
    pair(
        "chat.postMessage needs text or blocks",
        {"channel": CHANNEL, "blocks": [section("hi")]},
        {"channel": CHANNEL},
        ("chat.postMessage", "no_text"),
        via="api_call",
    ),
    pair(
        "the channel exists",
        {"channel": CHANNEL, "text": "hi"},
        {"channel": "CMISSING", "text": "hi"},
        ("chat.postMessage", "channel_not_found"),
    ),
    pair(
        "the channel id is well-formed",
        {"channel": CHANNEL, "text": "hi"},
        {"channel": "general", "text": "hi"},
        ("chat.postMessage", "channel_not_found"),
    ),
]


@pytest.fixture
async def seeded(fake: LocalSlack) -> LocalSlack:
    """A bot message at BOT_TS in CGENERAL, the war room C00000001 with UALICE, an open modal,
    a missing channel CMISSING and an unknown user UNOBODY."""
    ws = fake.workspace
    ws.post(CHANNEL, user=ws.bot_user, text="card")
    room = ws.create_channel(WAR_ROOM_NAME, is_private=False)
    ws.invite(room.id, ["UALICE"])
    ws.open_view({"type": "modal", "title": plain("Title"), "blocks": []}, trigger_id="T0")
    fake.missing_channels.add("CMISSING")
    fake.unknown_users.add("UNOBODY")
    return fake


async def error_of(fake: LocalSlack, request: Request) -> str | None:
    """Slack's error code for `request`, or None when it succeeds."""
    if request.via == "webhook":
        sent = await AsyncWebhookClient(fake.response_url("rule")).send_dict(request.kwargs)
        return None if sent.status_code == 200 else sent.body
    client = AsyncWebClient(base_url=fake.api_url, token="xoxb-test")
    try:
        if request.via == "api_call":
            await client.api_call(request.method, json=request.kwargs)
        else:
            await getattr(client, request.method.replace(".", "_"))(**request.kwargs)
    except SlackApiError as exc:
        return str(exc.response["error"])
    return None


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
async def test_slack_accepts_a_call_at_the_limit(rule: Rule, seeded: LocalSlack) -> None:
    seeded.scopes = rule.scopes

    assert await error_of(seeded, rule.ok) is None


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
async def test_slack_refuses_a_call_over_the_limit_with_its_error_code(
    rule: Rule, seeded: LocalSlack
) -> None:
    seeded.scopes = rule.scopes

    assert await error_of(seeded, rule.bad) == rule.error


async def test_missing_scope_names_the_needed_and_the_provided_scopes(fake: LocalSlack) -> None:
    fake.scopes = ["chat:write", "commands"]
    client = AsyncWebClient(base_url=fake.api_url, token="xoxb-test")

    with pytest.raises(SlackApiError) as raised:
        await client.conversations_history(channel=CHANNEL)

    answer = raised.value.response
    assert (answer["needed"], answer["provided"]) == ("channels:history", "chat:write,commands")


async def test_a_private_channel_needs_groups_write_to_be_created(fake: LocalSlack) -> None:
    fake.scopes = ["channels:manage"]
    client = AsyncWebClient(base_url=fake.api_url, token="xoxb-test")

    with pytest.raises(SlackApiError) as raised:
        await client.conversations_create(name="secret", is_private=True)

    assert raised.value.response["needed"] == "groups:write"


async def test_invalid_blocks_says_which_value_broke_which_rule(client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(**message(section("ok"), section("s" * 3001)))

    assert raised.value.response["errors"] == [
        "must be at most 3000 characters [json-pointer:/blocks/1/text/text]"
    ]


@pytest.mark.parametrize(("length", "warned"), [(4000, 0), (4001, 1)])
async def test_a_posted_text_over_4000_characters_is_taken_but_counted(
    fake: LocalSlack, client: AsyncWebClient, length: int, warned: int
) -> None:
    await client.chat_postMessage(channel=CHANNEL, text="t" * length)

    assert len(fake.long_texts) == warned
