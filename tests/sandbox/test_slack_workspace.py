"""The local Slack keeps a workspace: channels, messages and threads, edits, pins, ephemerals,
response_url posts, modals, users and user groups, all through the real AsyncWebClient.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from sandbox.slack import LocalSlack, SlackError, Workspace

C = "CDEPLOYS"
TITLE = {"type": "plain_text", "text": "Title"}


async def error_of(call: Awaitable[object]) -> str:
    with pytest.raises(SlackApiError) as raised:
        await call
    return str(raised.value.response["error"])


class TestMessages:
    async def test_a_post_answers_with_a_slack_ts_and_the_message(
        self, client: AsyncWebClient
    ) -> None:
        posted = await client.chat_postMessage(channel=C, text="hello")

        assert (posted["channel"], posted["ts"]) == (C, "1700000000.000001")
        assert posted["message"]["text"] == "hello"
        assert posted["message"]["bot_id"] == "BBOT"

    async def test_history_is_newest_first_and_pages_with_limit_and_cursor(
        self, client: AsyncWebClient
    ) -> None:
        for text in ("one", "two", "three"):
            await client.chat_postMessage(channel=C, text=text)

        first = await client.conversations_history(channel=C, limit=2)
        rest = await client.conversations_history(
            channel=C, cursor=first["response_metadata"]["next_cursor"]
        )

        assert [m["text"] for m in first["messages"]] == ["three", "two"]
        assert first["has_more"] is True
        assert [m["text"] for m in rest["messages"]] == ["one"]

    async def test_history_keeps_to_oldest_and_latest(self, client: AsyncWebClient) -> None:
        ts = [(await client.chat_postMessage(channel=C, text=t))["ts"] for t in "abcd"]

        between = await client.conversations_history(channel=C, oldest=ts[0], latest=ts[3])
        inclusive = await client.conversations_history(
            channel=C, oldest=ts[0], latest=ts[3], inclusive=True
        )

        assert [m["text"] for m in between["messages"]] == ["c", "b"]
        assert [m["text"] for m in inclusive["messages"]] == ["d", "c", "b", "a"]

    async def test_metadata_comes_back_only_when_asked_for(self, client: AsyncWebClient) -> None:
        metadata = {"event_type": "deploy_planned", "event_payload": {"run": "r1"}}
        await client.chat_postMessage(channel=C, text="card", metadata=metadata)

        plain = await client.conversations_history(channel=C)
        full = await client.conversations_history(channel=C, include_all_metadata=True)

        assert "metadata" not in plain["messages"][0]
        assert full["messages"][0]["metadata"] == metadata

    async def test_metadata_without_an_event_type_is_refused(self, client: AsyncWebClient) -> None:
        bad = {"event_payload": {"run": "r1"}}

        assert await error_of(client.chat_postMessage(channel=C, text="x", metadata=bad)) == (
            "invalid_metadata_schema"
        )

    async def test_replies_stay_in_their_thread_unless_broadcast(
        self, client: AsyncWebClient
    ) -> None:
        parent = await client.chat_postMessage(channel=C, text="card")
        await client.chat_postMessage(channel=C, thread_ts=parent["ts"], text="quiet")
        await client.chat_postMessage(
            channel=C, thread_ts=parent["ts"], text="loud", reply_broadcast=True
        )

        history = await client.conversations_history(channel=C)
        thread = await client.conversations_replies(channel=C, ts=parent["ts"])

        assert [m["text"] for m in history["messages"]] == ["loud", "card"]
        assert history["messages"][1]["reply_count"] == 2
        assert [m["text"] for m in thread["messages"]] == ["card", "quiet", "loud"]

    async def test_replies_of_an_unknown_thread_are_refused(self, client: AsyncWebClient) -> None:
        await client.chat_postMessage(channel=C, text="card")

        assert await error_of(client.conversations_replies(channel=C, ts="1.2")) == (
            "thread_not_found"
        )

    async def test_an_update_changes_the_message_and_keeps_its_history(
        self, fake: LocalSlack, client: AsyncWebClient
    ) -> None:
        posted = await client.chat_postMessage(channel=C, text="v1")

        await client.chat_update(channel=C, ts=posted["ts"], text="v2")
        await client.chat_update(channel=C, ts=posted["ts"], text="v3")

        message = fake.workspace.message(C, posted["ts"])
        assert message.text == "v3"
        assert [e.text for e in message.edits] == ["v1", "v2"]
        history = await client.conversations_history(channel=C)
        assert history["messages"][0]["edited"]["user"] == "UBOT"

    async def test_an_update_without_blocks_keeps_the_blocks(
        self, fake: LocalSlack, client: AsyncWebClient
    ) -> None:
        blocks = [{"type": "divider"}]
        posted = await client.chat_postMessage(channel=C, text="v1", blocks=blocks)

        await client.chat_update(channel=C, ts=posted["ts"], text="v2")

        assert fake.workspace.message(C, posted["ts"]).blocks == blocks

    async def test_updating_a_message_that_was_never_posted_is_refused(
        self, client: AsyncWebClient
    ) -> None:
        assert await error_of(client.chat_update(channel=C, ts="1700000000.000099", text="x")) == (
            "message_not_found"
        )

    async def test_the_bot_cannot_update_someone_elses_message(
        self, fake: LocalSlack, client: AsyncWebClient
    ) -> None:
        theirs = fake.workspace.post(C, user="UALICE", text="mine")

        assert await error_of(client.chat_update(channel=C, ts=theirs.ts, text="x")) == (
            "cant_update_message"
        )

    async def test_a_deleted_message_leaves_the_history(self, client: AsyncWebClient) -> None:
        posted = await client.chat_postMessage(channel=C, text="oops")

        await client.chat_delete(channel=C, ts=posted["ts"])

        assert (await client.conversations_history(channel=C))["messages"] == []

    async def test_a_permalink_points_at_the_message(
        self, fake: LocalSlack, client: AsyncWebClient
    ) -> None:
        posted = await client.chat_postMessage(channel=C, text="card")

        link = await client.chat_getPermalink(channel=C, message_ts=posted["ts"])

        assert link["permalink"] == f"{fake.base}/archives/{C}/p1700000000000001"

    async def test_a_message_is_pinned_once(self, fake: LocalSlack, client: AsyncWebClient) -> None:
        posted = await client.chat_postMessage(channel=C, text="alert")

        await client.pins_add(channel=C, timestamp=posted["ts"])

        assert fake.workspace.channel(C).pins == [posted["ts"]]
        assert await error_of(client.pins_add(channel=C, timestamp=posted["ts"])) == (
            "already_pinned"
        )

    async def test_an_ephemeral_is_kept_for_its_user_only(
        self, fake: LocalSlack, client: AsyncWebClient
    ) -> None:
        await client.chat_postEphemeral(channel=C, user="UALICE", text="psst")

        (ephemeral,) = fake.workspace.ephemerals
        assert (ephemeral.channel, ephemeral.user, ephemeral.text) == (C, "UALICE", "psst")
        assert (await client.conversations_history(channel=C))["messages"] == []


class TestResponseUrl:
    async def test_a_response_is_ephemeral_by_default(self, fake: LocalSlack) -> None:
        url = fake.response_url("cmd", channel=C, user="UALICE")

        sent = await AsyncWebhookClient(url).send(text="only you")

        assert (sent.status_code, sent.body) == (200, "ok")
        assert fake.responses == [{"text": "only you"}]
        assert [(e.user, e.via) for e in fake.workspace.ephemerals] == [("UALICE", "response_url")]

    async def test_an_in_channel_response_is_posted_in_the_thread_asked_for(
        self, fake: LocalSlack
    ) -> None:
        parent = fake.workspace.post(C, user="UBOT", text="card")
        url = fake.response_url("cmd", channel=C, user="UALICE")

        await AsyncWebhookClient(url).send_dict(
            {"text": "for all", "response_type": "in_channel", "thread_ts": parent.ts}
        )

        (reply,) = fake.workspace.replies(C, parent.ts)[1:]
        assert (reply.text, reply.user) == ("for all", "UBOT")

    async def test_replace_original_edits_the_clicked_message(self, fake: LocalSlack) -> None:
        card = fake.workspace.post(C, user="UBOT", text="card")
        url = fake.response_url("click", channel=C, user="UALICE", message_ts=card.ts)

        await AsyncWebhookClient(url).send(text="decided", replace_original=True)

        assert fake.workspace.message(C, card.ts).text == "decided"

    async def test_delete_original_removes_the_clicked_message(self, fake: LocalSlack) -> None:
        card = fake.workspace.post(C, user="UBOT", text="card")
        url = fake.response_url("click", channel=C, user="UALICE", message_ts=card.ts)

        await AsyncWebhookClient(url).send_dict({"delete_original": True})

        assert fake.workspace.channel(C).messages == []

    async def test_a_response_without_text_or_blocks_is_refused(self, fake: LocalSlack) -> None:
        sent = await AsyncWebhookClient(fake.response_url()).send_dict({"response_type": "x"})

        assert (sent.status_code, sent.body) == (400, "no_text")


class TestChannels:
    async def test_a_created_channel_gets_a_slack_id_and_the_bot_as_member(
        self, client: AsyncWebClient
    ) -> None:
        created = await client.conversations_create(name="inc-auth")

        info = await client.conversations_info(channel=created["channel"]["id"])
        assert created["channel"]["id"] == "C00000001"
        assert (info["channel"]["name"], info["channel"]["is_member"]) == ("inc-auth", True)

    async def test_a_well_formed_unknown_id_is_a_public_channel(self, fake: LocalSlack) -> None:
        fake.workspace.channel("CDEPLOYS")

        assert fake.channels == {"CDEPLOYS": "cdeploys"}
        assert fake.workspace.channel("CDEPLOYS").is_private is False

    async def test_setting_a_channel_name_creates_it_and_takes_the_name(
        self, fake: LocalSlack, client: AsyncWebClient
    ) -> None:
        fake.channels["CEXISTING"] = "inc-auth"

        assert await error_of(client.conversations_create(name="inc-auth")) == "name_taken"

    async def test_a_topic_is_kept(self, fake: LocalSlack, client: AsyncWebClient) -> None:
        room = (await client.conversations_create(name="inc-auth"))["channel"]["id"]

        await client.conversations_setTopic(channel=room, topic="P1 · auth")

        info = await client.conversations_info(channel=room)
        assert info["channel"]["topic"]["value"] == "P1 · auth"

    async def test_invited_users_become_members(
        self, fake: LocalSlack, client: AsyncWebClient
    ) -> None:
        room = (await client.conversations_create(name="inc-auth"))["channel"]["id"]

        await client.conversations_invite(channel=room, users=["UALICE", "ULEAD1"])

        assert fake.workspace.channel(room).members == ["UBOT", "UALICE", "ULEAD1"]

    async def test_members_are_listed_a_page_at_a_time(
        self, fake: LocalSlack, client: AsyncWebClient
    ) -> None:
        room = (await client.conversations_create(name="inc-auth"))["channel"]["id"]
        await client.conversations_invite(channel=room, users=["UALICE", "ULEAD1"])

        first = await client.conversations_members(channel=room, limit=2)
        rest = await client.conversations_members(
            channel=room, cursor=first["response_metadata"]["next_cursor"]
        )

        assert first["members"] == ["UBOT", "UALICE"]
        assert rest["members"] == ["ULEAD1"]
        assert rest["response_metadata"]["next_cursor"] == ""

    async def test_one_unknown_user_refuses_the_whole_invite_without_force(
        self, fake: LocalSlack, client: AsyncWebClient
    ) -> None:
        room = (await client.conversations_create(name="inc-auth"))["channel"]["id"]
        fake.unknown_users.add("UGHOST")

        error = await error_of(client.conversations_invite(channel=room, users="UALICE,UGHOST"))

        assert error == "user_not_found"
        assert fake.workspace.channel(room).members == ["UBOT"]

    async def test_force_invites_the_valid_users_and_lists_the_others(
        self, fake: LocalSlack, client: AsyncWebClient
    ) -> None:
        room = (await client.conversations_create(name="inc-auth"))["channel"]["id"]
        await client.conversations_invite(channel=room, users="UBOB")
        fake.unknown_users.add("UGHOST")

        with pytest.raises(SlackApiError) as raised:
            await client.conversations_invite(channel=room, users="UALICE,UGHOST,UBOB", force=True)

        assert raised.value.response["errors"] == [
            {"user": "UGHOST", "ok": False, "error": "user_not_found"},
            {"user": "UBOB", "ok": False, "error": "already_in_channel"},
        ]
        assert fake.workspace.channel(room).members == ["UBOT", "UBOB", "UALICE"]

    async def test_the_bot_cannot_invite_itself(self, client: AsyncWebClient) -> None:
        room = (await client.conversations_create(name="inc-auth"))["channel"]["id"]

        assert await error_of(client.conversations_invite(channel=room, users="UBOT")) == (
            "cant_invite_self"
        )

    async def test_the_bot_must_be_in_a_channel_to_invite_or_set_its_topic(
        self, client: AsyncWebClient
    ) -> None:
        assert await error_of(client.conversations_invite(channel=C, users="UALICE")) == (
            "not_in_channel"
        )
        assert await error_of(client.conversations_setTopic(channel=C, topic="t")) == (
            "not_in_channel"
        )

    async def test_an_archived_channel_takes_no_posts_and_no_second_archive(
        self, client: AsyncWebClient
    ) -> None:
        room = (await client.conversations_create(name="inc-auth"))["channel"]["id"]

        await client.conversations_archive(channel=room)

        assert await error_of(client.chat_postMessage(channel=room, text="x")) == "is_archived"
        assert await error_of(client.conversations_archive(channel=room)) == "already_archived"

    async def test_a_private_channel_the_bot_is_not_in_takes_no_posts(
        self, fake: LocalSlack, client: AsyncWebClient
    ) -> None:
        fake.workspace.add_channel("CSECRET", "secret", is_private=True, creator="UALICE")

        assert await error_of(client.chat_postMessage(channel="CSECRET", text="x")) == (
            "not_in_channel"
        )

    async def test_without_chat_write_public_the_bot_must_join_first(
        self, fake: LocalSlack, client: AsyncWebClient
    ) -> None:
        fake.scopes = ["chat:write", "channels:join"]

        refused = await error_of(client.chat_postMessage(channel=C, text="x"))
        await client.conversations_join(channel=C)
        await client.chat_postMessage(channel=C, text="x")

        assert refused == "not_in_channel"

    async def test_a_missing_channel_is_not_created(
        self, fake: LocalSlack, client: AsyncWebClient
    ) -> None:
        fake.missing_channels.add("CGONE")

        assert await error_of(client.conversations_info(channel="CGONE")) == "channel_not_found"
        assert "CGONE" not in fake.channels


class TestModals:
    async def test_an_opened_modal_gets_a_view_id(
        self, fake: LocalSlack, client: AsyncWebClient
    ) -> None:
        opened = await client.views_open(
            trigger_id="T1", view={"type": "modal", "title": TITLE, "blocks": []}
        )

        assert opened["view"]["id"] == "V00000001"
        assert fake.workspace.views["V00000001"].trigger_id == "T1"

    async def test_an_update_replaces_the_view_unless_its_hash_is_stale(
        self, fake: LocalSlack, client: AsyncWebClient
    ) -> None:
        view = {"type": "modal", "title": TITLE, "blocks": []}
        opened = (await client.views_open(trigger_id="T1", view=view))["view"]
        changed = {**view, "callback_id": "changed"}

        await client.views_update(view_id=opened["id"], view=changed, hash=opened["hash"])

        assert fake.workspace.views[opened["id"]].view["callback_id"] == "changed"
        assert await error_of(
            client.views_update(view_id=opened["id"], view=view, hash=opened["hash"])
        ) == ("hash_conflict")

    async def test_a_push_stacks_at_most_three_views(self, client: AsyncWebClient) -> None:
        view = {"type": "modal", "title": TITLE, "blocks": []}
        root = (await client.views_open(trigger_id="T1", view=view))["view"]

        pushed = (await client.views_push(trigger_id="T2", view=view))["view"]
        await client.views_push(trigger_id="T3", view=view)

        assert (pushed["root_view_id"], pushed["previous_view_id"]) == (root["id"], root["id"])
        assert await error_of(client.views_push(trigger_id="T4", view=view)) == (
            "push_limit_reached"
        )

    async def test_updating_an_unknown_view_is_refused(self, client: AsyncWebClient) -> None:
        view = {"type": "modal", "title": TITLE, "blocks": []}

        assert await error_of(client.views_update(external_id="nope", view=view)) == "not_found"


class TestPeople:
    async def test_auth_test_names_the_bot(self, client: AsyncWebClient) -> None:
        answer = await client.auth_test()

        assert (answer["user_id"], answer["bot_id"], answer["user"]) == ("UBOT", "BBOT", "chatops")

    async def test_a_seeded_user_has_a_name(self, client: AsyncWebClient) -> None:
        answer = await client.users_info(user="UALICE")

        assert answer["user"]["real_name"] == "Alice Archer"

    async def test_any_well_formed_user_id_is_known_unless_listed_unknown(
        self, fake: LocalSlack, client: AsyncWebClient
    ) -> None:
        fake.unknown_users.add("UGONE")

        await client.users_info(user="UNEWHIRE")

        assert await error_of(client.users_info(user="UGONE")) == "user_not_found"
        listed = [m["id"] for m in (await client.users_list())["members"]]
        assert "UNEWHIRE" in listed

    async def test_a_user_group_lists_its_members(self, client: AsyncWebClient) -> None:
        answer = await client.usergroups_users_list(usergroup="S0LEADS")

        assert answer["users"] == ["ULEAD1", "ULEAD2"]

    async def test_an_unknown_user_group_is_refused(self, client: AsyncWebClient) -> None:
        assert await error_of(client.usergroups_users_list(usergroup="S0NOPE")) == (
            "no_such_subteam"
        )


class TestCloseView:
    def _view(self, title: str) -> dict[str, Any]:
        return {"type": "modal", "title": {"type": "plain_text", "text": title}, "blocks": []}

    def test_closing_a_pushed_view_shows_the_one_below_again(self) -> None:
        ws = Workspace()
        below = ws.open_view(self._view("One"), trigger_id="t1")
        top = ws.push_view(self._view("Two"), trigger_id="t2")

        ws.close_view(top.id)

        assert list(ws.views) == [below.id]

    def test_clear_closes_the_whole_stack(self) -> None:
        ws = Workspace()
        below = ws.open_view(self._view("One"), trigger_id="t1")
        top = ws.push_view(self._view("Two"), trigger_id="t2")
        queue = ws.feed.subscribe()

        ws.close_view(top.id, stack=True)

        assert ws.views == {}
        closed = [queue.get_nowait().data["id"] for _ in range(queue.qsize())]
        assert sorted(closed) == sorted([below.id, top.id])

    def test_closing_a_view_that_is_not_open_is_not_found(self) -> None:
        with pytest.raises(SlackError, match="not_found"):
            Workspace().close_view("V404")
