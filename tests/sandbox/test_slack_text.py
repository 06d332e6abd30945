"""The local Slack stores text exactly as sent: escaping is the bot's job, never the fake's.

Slack reads `<!channel>`, `<@U…>` and `<url|label>` in mrkdwn and top-level text as controls;
a fake that escaped or cleaned them would hide a bot that forgot to.
"""

from __future__ import annotations

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import LocalSlack

RAW = [
    "<!channel> deploy & rollback",
    "<!here> <@UALICE> see <https://evil.example|the runbook>",
    "a < b && c > d",
    "&amp; already escaped &lt;tag&gt;",
]


@pytest.mark.parametrize("text", RAW)
async def test_top_level_text_is_stored_and_returned_unescaped(
    fake: LocalSlack, client: AsyncWebClient, text: str
) -> None:
    posted = await client.chat_postMessage(channel="CGENERAL", text=text)

    history = await client.conversations_history(channel="CGENERAL")
    assert posted["message"]["text"] == text
    assert history["messages"][0]["text"] == text
    assert fake.of("chat.postMessage")[0]["text"] == text


@pytest.mark.parametrize("text", RAW)
async def test_mrkdwn_in_blocks_is_stored_unescaped(
    fake: LocalSlack, client: AsyncWebClient, text: str
) -> None:
    block = {"type": "section", "text": {"type": "mrkdwn", "text": text}}

    posted = await client.chat_postMessage(channel="CGENERAL", text="fallback", blocks=[block])

    stored = fake.workspace.message("CGENERAL", posted["ts"])
    assert stored.blocks == [block]


async def test_an_edit_keeps_the_new_text_unescaped(
    fake: LocalSlack, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel="CGENERAL", text="plain")

    await client.chat_update(channel="CGENERAL", ts=posted["ts"], text="<!everyone> & more")

    assert fake.workspace.message("CGENERAL", posted["ts"]).text == "<!everyone> & more"


async def test_a_topic_is_stored_as_sent(fake: LocalSlack, client: AsyncWebClient) -> None:
    created = await client.conversations_create(name="war-room")

    await client.conversations_setTopic(channel=created["channel"]["id"], topic="<!channel> & co")

    assert fake.workspace.channel(created["channel"]["id"]).topic == "<!channel> & co"
