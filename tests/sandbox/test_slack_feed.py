"""The change feed: what a browser page would stream as the bot works."""

from __future__ import annotations

import asyncio

from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import Change, ChangeKind, LocalSlack


def drain(queue: asyncio.Queue[Change]) -> list[tuple[ChangeKind, str | None]]:
    seen = []
    while not queue.empty():
        change = queue.get_nowait()
        seen.append((change.kind, change.channel))
    return seen


async def test_posts_edits_and_new_channels_are_published_in_order(
    fake: LocalSlack, client: AsyncWebClient
) -> None:
    queue = fake.subscribe()

    created = await client.conversations_create(name="inc-auth")
    room = created["channel"]["id"]
    posted = await client.chat_postMessage(channel=room, text="alert")
    await client.chat_update(channel=room, ts=posted["ts"], text="alert, updated")

    assert drain(queue) == [
        (ChangeKind.CHANNEL_CREATED, room),
        (ChangeKind.MESSAGE_POSTED, room),
        (ChangeKind.MESSAGE_UPDATED, room),
    ]


async def test_a_change_carries_the_message_as_the_web_api_shows_it(
    fake: LocalSlack, client: AsyncWebClient
) -> None:
    fake.workspace.channel("CDEPLOYS")
    queue = fake.subscribe()

    await client.chat_postMessage(channel="CDEPLOYS", text="card")

    change = await queue.get()
    assert (change.data["text"], change.data["user"]) == ("card", "UBOT")


async def test_ephemerals_and_modals_are_published(
    fake: LocalSlack, client: AsyncWebClient
) -> None:
    fake.workspace.channel("CDEPLOYS")
    queue = fake.subscribe()
    view = {"type": "modal", "title": {"type": "plain_text", "text": "T"}, "blocks": []}

    await client.chat_postEphemeral(channel="CDEPLOYS", user="UALICE", text="psst")
    await client.views_open(trigger_id="T1", view=view)

    assert drain(queue) == [
        (ChangeKind.EPHEMERAL, "CDEPLOYS"),
        (ChangeKind.VIEW_OPENED, None),
    ]


async def test_an_unsubscribed_queue_hears_nothing_more(
    fake: LocalSlack, client: AsyncWebClient
) -> None:
    with fake.workspace.feed.subscription() as queue:
        await client.chat_postMessage(channel="CDEPLOYS", text="one")
    fake.unsubscribe(queue)

    await client.chat_postMessage(channel="CDEPLOYS", text="two")

    assert [kind for kind, _ in drain(queue)] == [
        ChangeKind.CHANNEL_CREATED,
        ChangeKind.MESSAGE_POSTED,
    ]
