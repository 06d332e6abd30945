"""The whole sandbox in one process, used through its page's HTTP API as a person would: the
real bot against the local Slack, moto and the demo services, on the sandbox's virtual time
(bakes and polls pass as soon as the sandbox waits for them). Each test starts a sandbox of
its own, a few seconds of real work, so marked slow."""

from __future__ import annotations

import asyncio
import os

import aiohttp
import boto3
import pytest

from sandbox.people import APPROVERS, INCIDENTS, ON_CALL, OUTSIDER, REQUESTER
from sandbox.services import Mode
from sandbox.slack import Message
from sandbox.stack import Sandbox
from tests.fakes.clock import AutojumpClock
from tests.sandbox.sandbox_client import (
    PageUser,
    cards,
    colour_version,
    desired_count,
    running_version,
    text_of,
    until,
    weights,
)
from tests.scrapes import scrape_url, value

pytestmark = pytest.mark.slow

SERVICES = (
    "api-gateway",
    "auth-svc",
    "market-svc",
    "skillpod-svc",
    "cockpit-svc",
    "billing-svc",
    "notification-svc",
    "audit-svc",
)


def person(http: aiohttp.ClientSession, sandbox: Sandbox, user: str) -> PageUser:
    return PageUser(http, sandbox.url, user)


async def deploy_approved(sandbox: Sandbox, http: aiohttp.ClientSession, what: str) -> Message:
    """`/deploy production <what>` by the requester, approved by both approvers: its card."""
    await person(http, sandbox, REQUESTER.id).type(f"/deploy production {what}")
    [card] = await until(sandbox, lambda: cards(sandbox.slack))
    for approver in APPROVERS:
        await person(http, sandbox, approver.id).click(card, "deploy_approve")
    return card


async def test_production_all_approved_by_two_people_runs_the_new_versions_in_ecs(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    first, second = (person(http, sandbox, p.id) for p in APPROVERS)

    await person(http, sandbox, REQUESTER.id).type("/deploy production all")
    [card] = await until(sandbox, lambda: cards(sandbox.slack))
    await first.click(card, "deploy_approve")
    await second.click(card, "deploy_approve")
    await until(sandbox, lambda: "deployment successful" in text_of(card))

    assert [running_version(sandbox, "production", s) for s in SERVICES] == ["v1.3.0"] * 8
    assert "@Priya Patel" in await first.sees()
    metrics = await scrape_url(sandbox.bot_url + "/metrics")
    production = {"environment": "production", "kind": "deploy"}
    assert value(metrics, "chatops_runs_total", **production, outcome="succeeded") == 1
    assert value(metrics, "chatops_approvals_pending", environment="production") == 0
    assert value(metrics, "chatops_aws_calls_total", service="ecs", method="UpdateService") >= 8


async def test_a_production_deploy_takes_auth_svc_through_the_canary_stages_onto_green(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    card = await deploy_approved(sandbox, http, "all")
    await until(sandbox, lambda: "stage 1/3: 5% of the traffic" in text_of(card))
    buttons = text_of(card)
    await until(sandbox, lambda: "stage 2/3: 50% of the traffic" in text_of(card))
    await until(sandbox, lambda: "stage 3/3: 100% of the traffic" in text_of(card))
    await until(sandbox, lambda: "deployment successful" in text_of(card))

    assert all(b in buttons for b in ("canary_promote", "canary_hold", "canary_abort"))
    assert weights(sandbox, "production", "auth-svc") == {"blue": 0, "green": 100}
    assert colour_version(sandbox, "production", "auth-svc-green", container="auth-svc") == "v1.3.0"
    # The old colour keeps running for the rollback window: a rollback is a flip.
    assert colour_version(sandbox, "production", "auth-svc-blue", container="auth-svc") == "v1.2.0"
    assert desired_count(sandbox, "production", "auth-svc-blue") == 2
    assert running_version(sandbox, "production", "market-svc") == "v1.3.0"


@pytest.mark.sandbox_bakes(None)  # figures need min_requests of traffic within a stage
async def test_the_canary_card_shows_the_5xx_figures_of_the_new_colour(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    card = await deploy_approved(sandbox, http, "auth-svc")

    await until(sandbox, lambda: "→ green: health ✅ · 5xx 0.0% (" in text_of(card))

    assert "Canary* stage" in text_of(card)


async def test_a_held_canary_waits_for_resume_then_finishes(
    sandbox: Sandbox, sandbox_clock: AutojumpClock, http: aiohttp.ClientSession
) -> None:
    first, second = (person(http, sandbox, p.id) for p in APPROVERS)
    card = await deploy_approved(sandbox, http, "auth-svc")
    await until(sandbox, lambda: "stage 1/3" in text_of(card))

    await first.click(card, "canary_hold")
    await until(sandbox, lambda: "Held* by" in text_of(card))
    await sandbox_clock.wait(2.5)  # longer than the 1 s bake: a held stage does not end
    held = text_of(card)
    await second.click(card, "canary_resume")
    await until(sandbox, lambda: "deployment successful" in text_of(card))

    assert "stage 1/3" in held
    assert weights(sandbox, "production", "auth-svc") == {"blue": 0, "green": 100}


@pytest.mark.sandbox_bakes(None)  # the 5% stage bakes long enough to reach min_requests
async def test_an_erroring_new_version_fails_the_5xx_gate_and_the_canary_flips_back(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    sandbox.services.set_fault("auth-svc", "v1.3.0", Mode.ERRORING)

    card = await deploy_approved(sandbox, http, "auth-svc")
    await until(sandbox, lambda: "Automatic rollback completed" in text_of(card))

    assert "The 5% stage failed: `auth-svc` (green): 5xx 20.0%" in text_of(card)
    assert "is over 1.0%" in text_of(card)
    assert weights(sandbox, "production", "auth-svc") == {"blue": 100, "green": 0}
    assert desired_count(sandbox, "production", "auth-svc-green") == 0
    assert running_version(sandbox, "production", "auth-svc") == "v1.2.0"


async def test_a_production_deploy_writes_its_records_to_the_local_bucket_and_the_page_lists_them(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    card = await deploy_approved(sandbox, http, "market-svc")
    await until(sandbox, lambda: "deployment successful" in text_of(card))
    # The records are written after the card's last edit, and S3 tells no one: poll it.
    async with asyncio.timeout(10):
        while len(keys := await sandbox.services.record_keys()) < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.2)

    panel = await person(http, sandbox, REQUESTER.id).get("/api/services")

    run = text_of(card).split("Deployment `", 1)[1].split("`", 1)[0]
    assert set(keys) == {
        f"production/deployment-record-{run}.json",
        f"production/rollback-instructions-{run}.json",
    }
    assert set(panel["records"]) == set(keys)


async def test_each_colour_of_a_canary_answers_from_the_version_its_service_runs(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    sandbox.services.set_fault("auth-svc", "v1.2.0", Mode.UNHEALTHY)
    base = sandbox.services.url("production", "auth-svc")

    async with http.get(base + "-green/health") as green, http.get(base + "/health") as live:
        answers = (green.status, await green.json()), (live.status, await live.json())
    panel = await person(http, sandbox, REQUESTER.id).get("/api/services")

    assert [(status, body["version"]) for status, body in answers] == [
        (503, "v1.2.0"),
        (503, "v1.2.0"),
    ]
    auth = next(r for r in panel["rows"] if r["service"] == "auth-svc")
    assert auth["running"]["production"]["colours"] == {
        "blue": {"version": "v1.2.0", "weight": 100, "tasks": 2},
        "green": {"version": "v1.2.0", "weight": 0, "tasks": 0},
    }
    assert auth["running"]["staging"]["colours"] is None


async def test_a_refused_approval_is_explained_only_to_who_clicked(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    requester = person(http, sandbox, REQUESTER.id)
    outsider = person(http, sandbox, OUTSIDER.id)
    await requester.type("/deploy production auth-svc")
    [card] = await until(sandbox, lambda: cards(sandbox.slack))

    await outsider.click(card, "deploy_approve")
    await until(sandbox, lambda: sandbox.slack.workspace.ephemerals)

    assert "Your click changed nothing" in await outsider.sees()
    assert "Your click changed nothing" not in await requester.sees()
    assert "approvals 0/2" in text_of(card)


async def test_a_broken_version_fails_its_health_check_and_is_rolled_back(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    requester = person(http, sandbox, REQUESTER.id)
    broken = await requester.post(
        "/api/services/fault", {"service": "auth-svc", "version": "v1.4.0", "mode": "unhealthy"}
    )

    await requester.type("/deploy staging auth-svc v1.4.0")
    [card] = await until(sandbox, lambda: cards(sandbox.slack))
    await until(sandbox, lambda: "Automatic rollback completed" in text_of(card))

    assert broken == {"ok": True}
    assert running_version(sandbox, "staging", "auth-svc") == "v1.3.0"
    answer = sandbox.services.answers[("staging", "auth-svc")]
    assert (answer.status, answer.version) == (200, "v1.3.0")


async def test_the_services_panel_shows_what_ecs_runs_and_what_is_broken(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    sandbox.services.set_fault("billing-svc", "v1.3.0", Mode.SLOW)

    panel = await person(http, sandbox, REQUESTER.id).get("/api/services")

    billing = next(r for r in panel["rows"] if r["service"] == "billing-svc")
    assert billing["running"]["staging"] == {
        "version": "v1.3.0",
        "mode": "slow",
        "last": None,
        "colours": None,
    }
    assert billing["running"]["production"]["version"] == "v1.2.0"
    assert billing["faults"] == {"v1.3.0": "slow"}


async def test_a_p1_opens_a_war_room_the_page_lists_with_its_pinned_alert(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    on_call = person(http, sandbox, ON_CALL.id)

    await on_call.type("/incident p1 auth-svc login failing", channel=INCIDENTS.id)
    room = await until(
        sandbox,
        lambda: next(
            (c for c in sandbox.slack.workspace.channels.values() if c.name.startswith("inc-")),
            None,
        ),
    )
    await until(sandbox, lambda: room.pins)
    listed = (await on_call.get("/api/channels"))["channels"]
    shown = await on_call.sees(room.id)

    assert room.name.endswith("-auth-svc-login-failing")
    assert room.id in [c["id"] for c in listed]
    assert "📌 Pinned" in shown
    assert "Post update" in shown


async def _update_form(sandbox: Sandbox, http: aiohttp.ClientSession) -> tuple[PageUser, str]:
    """The on-call engineer declares a P2 and clicks Post update; the open modal's id."""
    on_call = person(http, sandbox, ON_CALL.id)
    await on_call.type("/incident p2 billing exports slow", channel=INCIDENTS.id)
    # Declared when the bot says so to its commander (the alert is pinned a moment before).
    await until(
        sandbox, lambda: any("declared" in e.text for e in sandbox.slack.workspace.ephemerals)
    )
    room = next(c for c in sandbox.slack.workspace.channels.values() if c.pins)
    await on_call.click(
        sandbox.slack.workspace.message(room.id, room.pins[0]), "incident_post_update"
    )
    await until(sandbox, lambda: sandbox.slack.workspace.views)
    return on_call, (await on_call.get("/api/modal"))["modal"]["id"]


async def test_a_modal_opens_for_who_clicked_and_the_client_asks_for_required_fields(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    on_call, view_id = await _update_form(sandbox, http)

    opened = (await on_call.get("/api/modal"))["modal"]
    someone_else = (await person(http, sandbox, REQUESTER.id).get("/api/modal"))["modal"]
    refused = await on_call.post("/api/submit", {"view_id": view_id, "values": {}})

    assert opened["title"] == "Post update"
    assert someone_else is None
    assert refused["ok"] is False
    assert "Please complete this required field." in refused["html"]
    assert view_id in sandbox.slack.workspace.views


async def test_an_unknown_command_is_answered_by_slackbot_and_reaches_no_app(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    requester = person(http, sandbox, REQUESTER.id)

    answer = await requester.type("/deploi production all")

    assert answer == {"ok": False, "error": "not_a_command"}
    assert "is not a valid command" in await requester.sees()
    assert cards(sandbox.slack) == []


async def test_text_without_a_slash_is_posted_as_that_persons_message(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    requester = person(http, sandbox, REQUESTER.id)

    await requester.type("shipping <b>now</b> & then")

    [said] = [
        m for m in sandbox.slack.workspace.channel("C0DEPLOYS").messages if m.user == REQUESTER.id
    ]
    assert said.text == "shipping &lt;b&gt;now&lt;/b&gt; &amp; then"
    assert "shipping &lt;b&gt;now&lt;/b&gt; &amp; then" in await requester.sees()


async def test_the_event_stream_tells_the_page_when_the_bot_posts(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    async with http.get(sandbox.url + "api/events") as stream:
        await stream.content.readline()  # the retry line
        await stream.content.readline()
        await person(http, sandbox, REQUESTER.id).type("/deploy staging auth-svc v1.4.0")
        lines = [(await stream.content.readline()).decode() for _ in range(4)]

    assert any('"kind": "message_posted", "channel": "C0DEPLOYS"' in line for line in lines)


async def test_nothing_in_the_sandbox_points_outside_this_machine(sandbox: Sandbox) -> None:
    ecs = boto3.session.Session().client("ecs", region_name="us-east-1")
    local = "http://127.0.0.1:"

    assert ecs.meta.endpoint_url == sandbox.aws.endpoint
    assert os.environ["AWS_ENDPOINT_URL"].startswith(local)  # noqa: TID251
    assert sandbox.slack.api_url.startswith(local)
    assert sandbox.bot_url.startswith(local)
    assert sandbox.url.startswith(local)
    urls = [u for s in sandbox.config.services.values() for u in s.health_url.values()]
    canary = sandbox.config.services["auth-svc"].canary_in("production")
    assert canary is not None
    urls += [canary.blue.health_url, canary.green.health_url]
    assert all(u.startswith(local) for u in urls)
    assert sandbox.db_path.parent == sandbox.config_path.parent


async def test_the_apps_own_form_errors_are_shown_under_their_fields(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    on_call, view_id = await _update_form(sandbox, http)
    values = {"status": "identified", "action": "Raising the pool", "eta": "  ", "impact": "Slow"}

    refused = await on_call.post("/api/submit", {"view_id": view_id, "values": values})

    assert refused["ok"] is False
    assert "Give an estimate, or write Unknown." in refused["html"]
    assert "Raising the pool" in refused["html"]
    assert view_id in sandbox.slack.workspace.views


async def test_a_filled_in_update_form_closes_and_the_update_is_posted(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    on_call, view_id = await _update_form(sandbox, http)
    values = {"status": "identified", "action": "Raising the pool", "eta": "10m", "impact": "Slow"}

    done = await on_call.post("/api/submit", {"view_id": view_id, "values": values})
    await until(
        sandbox,
        lambda: any(
            "Raising the pool" in m.text
            for c in sandbox.slack.workspace.channels.values()
            for m in c.messages
        ),
    )

    assert done == {"ok": True, "closed": True}
    assert (await on_call.get("/api/modal"))["modal"] is None


async def test_on_call_rolls_a_canary_back_from_the_question_only_they_see(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    card = await deploy_approved(sandbox, http, "auth-svc")
    await until(sandbox, lambda: "deployment successful" in text_of(card))
    on_call = person(http, sandbox, ON_CALL.id)

    await on_call.type("/rollback production auth-svc login errors after the release")
    question = await until(
        sandbox,
        lambda: next(
            (
                e
                for e in sandbox.slack.workspace.ephemerals
                if "Roll back in production" in str(e.blocks)
            ),
            None,
        ),
    )
    assert question.user == ON_CALL.id
    assert "Roll back in production?" not in await person(http, sandbox, OUTSIDER.id).sees()
    assert "Roll back in production?" in await on_call.sees()
    await on_call.click(question, "rollback_confirm")
    rollback = await until(
        sandbox,
        lambda: next(
            (c for c in cards(sandbox.slack) if "Rollback in production" in text_of(c)), None
        ),
    )
    await until(sandbox, lambda: "Rollback complete" in text_of(rollback))

    assert weights(sandbox, "production", "auth-svc") == {"blue": 100, "green": 0}
    assert running_version(sandbox, "production", "auth-svc") == "v1.2.0"
    # The question itself became the answer, as a click's response_url does in Slack.
    answered = sandbox.slack.workspace.ephemeral(question.ts)
    assert "Rolling back" in answered.text
    assert "rollback_confirm" not in str(answered.blocks)
    # The deploy's card says who took it back, and its Roll back button is gone.
    await until(sandbox, lambda: "Rolled back by" in text_of(card))
    assert "deploy_rollback" not in text_of(card)


async def test_the_app_home_shows_each_person_the_approvals_waiting_for_them(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    """Opening Home on the page reaches the bot as `app_home_opened`; the page draws the Home
    Slack holds for that person, and its Approve acts as the card's does."""
    approver, outsider = person(http, sandbox, APPROVERS[0].id), person(http, sandbox, OUTSIDER.id)
    homes = sandbox.slack.workspace.home_views
    for viewer in (approver, outsider):
        assert (await viewer.post("/api/home/open", {}))["ok"]
    await until(sandbox, lambda: len(homes) == 2)

    await person(http, sandbox, REQUESTER.id).type("/deploy production auth-svc")
    [card] = await until(sandbox, lambda: cards(sandbox.slack))
    await until(sandbox, lambda: "Waiting for you (1)" in str(homes[approver.user].view))
    await until(sandbox, lambda: "Awaiting other" in str(homes[outsider.user].view))

    assert ">Approve</button>" in (await approver.get("/api/home"))["home"]["html"]
    assert ">Approve</button>" not in (await outsider.get("/api/home"))["home"]["html"]
    block = next(b for b in homes[approver.user].view["blocks"] if b["type"] == "actions")
    clicked = await approver.post(
        "/api/action",
        {"surface": "home", "block_id": block["block_id"], "action_id": "deploy_approve"},
    )
    assert clicked["ok"]
    await until(sandbox, lambda: "approvals 1/2" in text_of(card))
