"""Fault injection: Slack errors, bare HTTP errors, rate limits, slow answers, and calls Slack
carried out although their answer never arrived.
"""

from __future__ import annotations

import asyncio

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from sandbox.slack import LocalSlack

C = "CDEPLOYS"


async def posted_texts(fake: LocalSlack) -> list[str]:
    return [m.text for m in fake.workspace.channel(C).messages]


async def test_fail_next_answers_the_error_once_and_does_nothing(
    fake: LocalSlack, client: AsyncWebClient
) -> None:
    fake.fail_next("chat.postMessage", "not_in_channel")

    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel=C, text="first")
    await client.chat_postMessage(channel=C, text="second")

    assert raised.value.response["error"] == "not_in_channel"
    assert await posted_texts(fake) == ["second"]
    assert [c.error for c in fake.calls] == ["not_in_channel", None]


async def test_an_http_error_has_no_json_and_does_nothing(
    fake: LocalSlack, client: AsyncWebClient
) -> None:
    fake.http_error_next("chat.postMessage", 503, times=2)

    for _ in range(2):
        with pytest.raises(SlackApiError) as raised:
            await client.chat_postMessage(channel=C, text="lost")
        assert raised.value.response.status_code == 503
        assert "error" not in raised.value.response.data
    await client.chat_postMessage(channel=C, text="through")

    assert await posted_texts(fake) == ["through"]


async def test_a_rate_limit_answers_429_with_retry_after(
    fake: LocalSlack, client: AsyncWebClient
) -> None:
    fake.rate_limit_next("chat.update", retry_after=3)

    with pytest.raises(SlackApiError) as raised:
        await client.chat_update(channel=C, ts="1.1", text="x")

    answer = raised.value.response
    assert (answer.status_code, answer["error"]) == (429, "ratelimited")
    assert answer.headers["Retry-After"] == "3"


async def test_a_delay_outlasts_a_short_client_timeout_yet_the_call_is_recorded(
    fake: LocalSlack,
) -> None:
    fake.delay("chat.postMessage", 5)
    impatient = AsyncWebClient(base_url=fake.api_url, token="xoxb-test", timeout=0.05)

    with pytest.raises(TimeoutError):
        await impatient.chat_postMessage(channel=C, text="slow")

    assert [c.method for c in fake.calls] == ["chat.postMessage"]


async def test_a_delay_waits_before_answering(fake: LocalSlack, client: AsyncWebClient) -> None:
    fake.delay("auth.test", 0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()

    await client.auth_test()

    assert loop.time() - started >= 0.05


async def test_a_delay_of_zero_stops_delaying(fake: LocalSlack) -> None:
    fake.delay("auth.test", 5)
    fake.delay("auth.test", 0)
    client = AsyncWebClient(base_url=fake.api_url, token="xoxb-test", timeout=1)

    assert (await client.auth_test())["ok"] is True


async def test_accept_then_fail_posts_the_message_but_answers_500(
    fake: LocalSlack, client: AsyncWebClient
) -> None:
    fake.accept_then_fail("chat.postMessage")

    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel=C, text="did it go?")

    assert raised.value.response.status_code == 500
    assert await posted_texts(fake) == ["did it go?"]
    assert fake.calls[-1].error == "answer_lost"


async def test_accept_then_hang_posts_the_message_and_never_answers(fake: LocalSlack) -> None:
    fake.accept_then_fail("chat.postMessage", hang=True)
    impatient = AsyncWebClient(base_url=fake.api_url, token="xoxb-test", timeout=0.05)

    with pytest.raises(TimeoutError):
        await impatient.chat_postMessage(channel=C, text="did it go?")

    assert await posted_texts(fake) == ["did it go?"]


async def test_accept_then_fail_waits_for_a_call_that_succeeds(
    fake: LocalSlack, client: AsyncWebClient
) -> None:
    fake.accept_then_fail("chat.postMessage")

    with pytest.raises(SlackApiError) as refused:
        await client.chat_postMessage(channel="CGONE!", text="x")
    with pytest.raises(SlackApiError) as lost:
        await client.chat_postMessage(channel=C, text="y")

    assert refused.value.response["error"] == "channel_not_found"
    assert lost.value.response.status_code == 500


async def test_response_urls_take_faults_under_the_name_response_url(fake: LocalSlack) -> None:
    fake.http_error_next("response_url", 500)

    sent = await AsyncWebhookClient(fake.response_url()).send(text="hi")

    assert sent.status_code == 500


async def test_a_lost_response_url_answer_still_delivers(fake: LocalSlack) -> None:
    fake.accept_then_fail("response_url")
    url = fake.response_url("cmd", channel=C, user="UALICE")

    sent = await AsyncWebhookClient(url).send(text="hi")

    assert sent.status_code == 500
    assert [e.text for e in fake.workspace.ephemerals] == ["hi"]


async def test_closing_releases_a_call_left_hanging(
    fake: LocalSlack, client: AsyncWebClient
) -> None:
    fake.accept_then_fail("chat.postMessage", hang=True)
    changes = fake.subscribe()
    pending = asyncio.create_task(client.chat_postMessage(channel=C, text="x"))

    async with asyncio.timeout(5):
        await changes.get()
        await fake.close()
        with pytest.raises(SlackApiError) as raised:
            await pending

    assert raised.value.response.status_code == 500
