"""The interface the suite's old FakeSlack had, which `tests/fakes/slack_api.py` still exports."""

from __future__ import annotations

import json

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_api import Call, FakeSlack


async def test_form_encoded_blocks_are_recorded_decoded(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    blocks = [{"type": "divider"}]

    await client.api_call(
        "chat.postMessage", data={"channel": "C1X", "text": "t", "blocks": json.dumps(blocks)}
    )

    assert fake.calls == [
        Call("chat.postMessage", {"channel": "C1X", "text": "t", "blocks": blocks})
    ]


async def test_query_arguments_of_a_get_are_recorded(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    await client.usergroups_users_list(usergroup="S0LEADS")

    assert fake.of("usergroups.users.list") == [{"usergroup": "S0LEADS"}]


async def test_response_url_posts_are_kept_in_order(fake: FakeSlack) -> None:
    async with aiohttp.ClientSession() as http:
        for text in ("one", "two"):
            await http.post(fake.response_url("deploy-U1"), json={"text": text})

    assert [r["text"] for r in fake.responses] == ["one", "two"]


async def test_a_queued_error_is_visible_in_errors_until_used(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.fail_next("conversations.create", "restricted_action")

    assert fake.errors == {"conversations.create": ["restricted_action"]}
    with pytest.raises(SlackApiError):
        await client.conversations_create(name="x")
    assert fake.errors == {"conversations.create": []}


async def test_channels_reads_and_writes_like_the_old_dict(fake: FakeSlack) -> None:
    fake.channels["CEXISTING"] = "inc-auth"
    fake.channels["CEXISTING"] = "inc-auth-renamed"

    assert dict(fake.channels.items()) == {"CEXISTING": "inc-auth-renamed"}
    del fake.channels["CEXISTING"]
    assert len(fake.channels) == 0


async def test_socket_mode_opens_a_websocket_on_the_fake(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    opened = await client.apps_connections_open(app_token="xapp-1-test")

    async with aiohttp.ClientSession() as http, http.ws_connect(opened["url"]) as ws:
        hello = await ws.receive_json()
        await fake.socket_connected.wait()
        await fake.push({"envelope_id": "e1", "type": "slash_commands"})
        pushed = await ws.receive_json()
        await ws.send_json({"envelope_id": "e1"})
        await ws.close()

    assert hello["type"] == "hello"
    assert pushed["envelope_id"] == "e1"


async def test_a_call_without_a_token_is_not_authed(fake: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as raised:
        await AsyncWebClient(base_url=fake.api_url).auth_test()

    assert raised.value.response["error"] == "not_authed"


async def test_the_address_is_unknown_before_start() -> None:
    with pytest.raises(RuntimeError, match="start"):
        _ = FakeSlack().api_url
