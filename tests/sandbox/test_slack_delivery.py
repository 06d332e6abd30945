"""`AppDelivery`: Slack's side of an app's Request URL, against a small app that checks every
signature the way Bolt does (slack_sdk's SignatureVerifier)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from slack_sdk.signature import SignatureVerifier

from sandbox.slack import AppDelivery, LocalSlack

SECRET = "app-signing-secret"
Answer = Callable[[dict[str, Any]], web.Response]


class App:
    """Records each verified request; answers what `answer` says (default: an empty 200)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.answer: Answer = lambda _: web.Response()
        self.verifier = SignatureVerifier(SECRET)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        if not self.verifier.is_valid_request(body, dict(request.headers)):
            return web.Response(status=401)
        if request.content_type == "application/json":
            received = json.loads(body)
            self.received.append(received)
            return self.answer(received)
        form = {k: v[0] for k, v in parse_qs(body).items()}
        received = json.loads(form["payload"]) if "payload" in form else form
        self.received.append(received)
        return self.answer(received)


@pytest.fixture
async def app() -> AsyncIterator[tuple[App, str]]:
    recorder = App()
    web_app = web.Application()
    web_app.router.add_post("/slack/events", recorder.handle)
    server = TestServer(web_app, host="127.0.0.1")
    await server.start_server()
    yield recorder, str(server.make_url("/slack/events"))
    await server.close()


@pytest.fixture
async def delivery(fake: LocalSlack, app: tuple[App, str]) -> AsyncIterator[AppDelivery]:
    sender = AppDelivery(fake, request_url=app[1], signing_secret=SECRET)
    yield sender
    await sender.close()


async def test_a_command_is_signed_so_the_app_accepts_it(
    delivery: AppDelivery, app: tuple[App, str]
) -> None:
    ack = await delivery.command("/deploy", "production all", user="UALICE", channel="CDEPLOYS")

    [received] = app[0].received
    assert ack.status == 200
    assert (received["command"], received["text"]) == ("/deploy", "production all")
    assert (received["user_id"], received["user_name"]) == ("UALICE", "alice")


async def test_a_request_signed_with_another_secret_is_refused(
    fake: LocalSlack, app: tuple[App, str]
) -> None:
    forger = AppDelivery(fake, request_url=app[1], signing_secret="not-the-secret")

    ack = await forger.command("/deploy", "help", user="UALICE", channel="CDEPLOYS")
    await forger.close()

    assert ack.status == 401
    assert app[0].received == []


async def test_a_commands_ack_text_is_shown_to_that_person_alone(
    fake: LocalSlack, delivery: AppDelivery, app: tuple[App, str]
) -> None:
    app[0].answer = lambda _: web.json_response({"response_type": "ephemeral", "text": "Usage"})

    await delivery.command("/deploy", "", user="UALICE", channel="CDEPLOYS")

    [shown] = fake.workspace.ephemerals
    assert (shown.channel, shown.user, shown.text, shown.via) == (
        "CDEPLOYS",
        "UALICE",
        "Usage",
        "ack",
    )


async def test_an_empty_ack_shows_nothing(fake: LocalSlack, delivery: AppDelivery) -> None:
    await delivery.command("/deploy", "production all", user="UALICE", channel="CDEPLOYS")

    assert fake.workspace.ephemerals == []


async def test_a_commands_response_url_answers_that_person_in_that_channel(
    fake: LocalSlack, delivery: AppDelivery, app: tuple[App, str]
) -> None:
    await delivery.command("/deploy", "status x", user="UBOB", channel="CDEPLOYS")
    response_url = app[0].received[0]["response_url"]

    async with aiohttp.ClientSession() as http, http.post(response_url, json={"text": "later"}):
        pass

    [shown] = fake.workspace.ephemerals
    assert (shown.channel, shown.user, shown.text) == ("CDEPLOYS", "UBOB", "later")


async def test_a_click_carries_the_message_and_a_response_url_that_can_replace_it(
    fake: LocalSlack, delivery: AppDelivery, app: tuple[App, str]
) -> None:
    card = fake.workspace.post("CDEPLOYS", user=fake.workspace.bot_user, text="card")
    action = {"type": "button", "action_id": "approve", "block_id": "b", "value": "d1"}

    await delivery.block_actions(action, user="UALICE", channel="CDEPLOYS", message=card.to_api())
    received = app[0].received[0]
    async with (
        aiohttp.ClientSession() as http,
        http.post(received["response_url"], json={"replace_original": True, "text": "approved"}),
    ):
        pass

    assert received["message"]["ts"] == card.ts
    assert received["actions"][0]["value"] == "d1"
    assert fake.workspace.message("CDEPLOYS", card.ts).text == "approved"


async def test_a_modal_opened_with_a_clicks_trigger_belongs_to_whoever_clicked(
    fake: LocalSlack, delivery: AppDelivery, app: tuple[App, str]
) -> None:
    action = {"type": "button", "action_id": "open", "block_id": "b", "value": "x"}

    await delivery.block_actions(action, user="UCAROL", channel="CDEPLOYS", message=None)

    assert delivery.trigger_user[app[0].received[0]["trigger_id"]] == "UCAROL"


def _open_modal(fake: LocalSlack) -> str:
    view = {"type": "modal", "title": {"type": "plain_text", "text": "Form"}, "blocks": []}
    return fake.workspace.open_view(view, trigger_id="t").id


async def test_a_submission_with_errors_leaves_the_modal_open(
    fake: LocalSlack, delivery: AppDelivery, app: tuple[App, str]
) -> None:
    view_id = _open_modal(fake)
    errors = {"response_action": "errors", "errors": {"eta": "Say when"}}
    app[0].answer = lambda _: web.json_response(errors)

    ack = await delivery.view_submission({"id": view_id}, {}, user="UALICE")

    assert ack.errors == {"eta": "Say when"}
    assert view_id in fake.workspace.views


async def test_an_empty_ack_to_a_submission_closes_the_modal(
    fake: LocalSlack, delivery: AppDelivery, app: tuple[App, str]
) -> None:
    view_id = _open_modal(fake)

    ack = await delivery.view_submission({"id": view_id, "callback_id": "f"}, {}, user="UALICE")

    assert ack.errors == {}
    assert view_id not in fake.workspace.views
    assert app[0].received[0]["view"]["callback_id"] == "f"


async def test_opening_the_home_tab_is_a_signed_event_carrying_the_view_shown(
    fake: LocalSlack, delivery: AppDelivery, app: tuple[App, str]
) -> None:
    fake.workspace.publish_home("UALICE", {"type": "home", "blocks": []}, hash_=None)

    ack = await delivery.app_home_opened("UALICE")

    [received] = app[0].received
    assert ack.status == 200
    assert received["type"] == "event_callback"
    event = received["event"]
    assert (event["type"], event["user"], event["tab"]) == ("app_home_opened", "UALICE", "home")
    assert event["view"]["id"] == fake.workspace.home_views["UALICE"].id


async def test_a_click_on_the_home_tab_carries_the_view_and_no_channel_or_response_url(
    fake: LocalSlack, delivery: AppDelivery, app: tuple[App, str]
) -> None:
    fake.workspace.publish_home("UALICE", {"type": "home", "blocks": []}, hash_=None)

    await delivery.home_action({"action_id": "go", "value": "1"}, user="UALICE")

    [received] = app[0].received
    assert received["container"] == {
        "type": "view",
        "view_id": fake.workspace.home_views["UALICE"].id,
    }
    assert received["view"]["type"] == "home"
    assert {"channel", "message", "response_url"} & received.keys() == set()
    assert received["actions"][0]["action_id"] == "go"
