"""views.publish on the local Slack, through the real AsyncWebClient: a Home tab is taken as
Slack takes it, and refused with Slack's own error code where Slack refuses it."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import LocalSlack

USER = "UALICE"
Json = dict[str, Any]


def home(*blocks: Json, **extra: Any) -> Json:
    return {"type": "home", "blocks": list(blocks), **extra}


def section(text: str = "hello") -> Json:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


async def refusal(client: AsyncWebClient, **kwargs: Any) -> str:
    with pytest.raises(SlackApiError) as raised:
        await client.views_publish(**kwargs)
    return str(raised.value.response["error"])


async def test_a_published_home_is_kept_for_its_user_and_replaced_by_the_next(
    fake: LocalSlack, client: AsyncWebClient
) -> None:
    first = await client.views_publish(user_id=USER, view=home(section("one")))
    second = await client.views_publish(user_id=USER, view=home(section("two")))

    assert second["view"]["id"] == first["view"]["id"]
    assert second["view"]["hash"] != first["view"]["hash"]
    assert second["view"]["type"] == "home"
    assert fake.workspace.home_views[USER].view["blocks"] == [section("two")]


async def test_a_home_tab_takes_100_blocks_and_refuses_101(
    fake: LocalSlack, client: AsyncWebClient
) -> None:
    await client.views_publish(user_id=USER, view=home(*[section()] * 100))

    assert await refusal(client, user_id=USER, view=home(*[section()] * 101)) == "invalid_blocks"
    assert len(fake.workspace.home_views[USER].view["blocks"]) == 100


@pytest.mark.parametrize(
    ("view", "error"),
    [
        (home(section("x" * 3001)), "invalid_blocks"),
        (home({"type": "file", "external_id": "f", "source": "remote"}), "invalid_blocks"),
        (home({"type": "markdown", "text": "**hi**"}), "invalid_blocks"),
        (home({"type": "actions", "elements": []}), "invalid_blocks"),
        (
            {"type": "modal", "title": {"type": "plain_text", "text": "T"}, "blocks": []},
            "invalid_arguments",
        ),
        ({"blocks": []}, "invalid_arguments"),
        (home(private_metadata="x" * 3001), "invalid_arguments"),
        (home(callback_id="x" * 256), "invalid_arguments"),
        (home(*[section("x" * 2999)] * 90), "view_too_large"),
    ],
    ids=[
        "section text over 3000",
        "a file block (messages only)",
        "a markdown block (messages only)",
        "an empty actions block",
        "a modal",
        "no type",
        "private_metadata over 3000",
        "callback_id over 255",
        "over 250 kB",
    ],
)
async def test_a_home_tab_slack_would_refuse_is_refused_with_slacks_error(
    fake: LocalSlack, client: AsyncWebClient, view: Json, error: str
) -> None:
    assert await refusal(client, user_id=USER, view=view) == error
    assert USER not in fake.workspace.home_views


async def test_a_home_tab_needs_a_user_slack_knows(
    fake: LocalSlack, client: AsyncWebClient
) -> None:
    fake.unknown_users.add("UGONE")

    assert await refusal(client, user_id="UGONE", view=home()) == "user_not_found"
    assert await refusal(client, user_id="", view=home()) == "invalid_arguments"


async def test_a_stale_hash_is_a_conflict(client: AsyncWebClient) -> None:
    first = await client.views_publish(user_id=USER, view=home(section("one")))
    await client.views_publish(user_id=USER, view=home(section("two")))

    stale = first["view"]["hash"]

    assert await refusal(client, user_id=USER, view=home(), hash=stale) == "hash_conflict"


async def test_an_app_without_its_home_tab_enabled_cannot_publish_one() -> None:
    async with LocalSlack(home_tab_enabled=False) as fake:
        client = AsyncWebClient(base_url=fake.api_url, token="xoxb-test")

        assert await refusal(client, user_id=USER, view=home()) == "not_enabled"
