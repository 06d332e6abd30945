"""The sandbox page in a real browser: Debian's headless Chromium, driven by Playwright.

As a new user would: deploy production, approve as two people (the first from the bot's App
Home), watch auth-svc's canary go
through its stages and the card turn green while ECS (moto) runs the new versions (auth-svc on
the colour taking all the traffic); break a version, deploy it and watch the rollback; open a P1
and see its war room appear; a modal's required fields. Screenshots of each step go to
artifacts/screenshots/. Without a browser the test is skipped and says why.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.people import APPROVERS, DEPLOYS, INCIDENTS, ON_CALL, REQUESTER
from sandbox.stack import Options, Sandbox, open_sandbox
from tests.sandbox.sandbox_client import TEST_BAKES, running_version

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
# Headless, and nothing that reaches for the network on its own (there is none here).
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 20_000
DEPLOY_MS = 60_000  # production all: seven services, auth-svc's canary stages (11 s), the gateway


def _why_no_browser() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed: make install puts it in .venv (the dev extras)"
    if not os.access(CHROMIUM, os.X_OK):
        return (
            f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install chromium); "
            ".ci/run does it when it runs as root"
        )
    return None


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    options = Options(directory=tmp_path / "sandbox", port=0, canary_bakes=TEST_BAKES)
    async with open_sandbox(options) as running:
        yield running


@pytest.fixture
async def page(sandbox: Sandbox) -> AsyncIterator[Any]:
    reason = _why_no_browser()
    if reason is not None:
        pytest.skip(reason)
    from playwright.async_api import async_playwright, expect

    SHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        tab = await browser.new_page(viewport={"width": 1440, "height": 900})
        tab.set_default_timeout(WAIT_MS)
        # Assertions have their own default (5 s), too short for a real rollback on a busy
        # machine: they wait as long as actions do.
        expect.set_options(timeout=WAIT_MS)
        errors: list[str] = []
        tab.on("pageerror", lambda error: errors.append(str(error)))
        await tab.goto(sandbox.url)
        yield tab
        await browser.close()
        assert errors == [], f"the page's JavaScript failed: {errors}"


async def shot(page: Any, name: str) -> None:
    await page.screenshot(path=str(SHOTS / f"{name}.png"))


async def be(page: Any, user: str) -> None:
    await page.select_option("#user", user)


async def type_in(page: Any, text: str) -> None:
    await page.fill("#composer-text", text)
    await page.press("#composer-text", "Enter")


async def test_a_new_user_deploys_approves_breaks_and_opens_an_incident(
    sandbox: Sandbox, page: Any
) -> None:
    from playwright.async_api import expect

    messages = page.locator("#messages")
    await expect(messages).to_contain_text("Welcome to the chatops-bot sandbox")
    await shot(page, "01-start")

    # Deploy production, approved by two people, watched live (the page is never reloaded).
    await be(page, REQUESTER.id)
    await type_in(page, "/deploy production all")
    card = messages.locator(".msg", has_text="Deploy to production")
    await expect(card.get_by_role("button", name="Approve")).to_be_visible()
    await shot(page, "02-plan-card")
    first, second = APPROVERS
    # The first approver approves from the bot's App Home, where it waits for them.
    await be(page, first.id)
    await page.locator("#home-link").click()
    home = page.locator("#home")
    await expect(home).to_contain_text("Waiting for you (1)")
    await shot(page, "02a-app-home")
    await home.get_by_role("button", name="Approve").click()
    await page.locator("#confirm").get_by_role("button", name="Approve").click()
    await expect(home).to_contain_text("Waiting for you: nothing")
    await expect(home).to_contain_text("Awaiting other approvers")
    await page.locator(f'#channels a[data-channel-id="{DEPLOYS.id}"]').click()
    await expect(card).to_contain_text("approvals 1/2")
    await be(page, second.id)
    await card.get_by_role("button", name="Approve").click()
    await shot(page, "02b-confirm")
    await page.locator("#confirm").get_by_role("button", name="Approve").click()
    await expect(card).to_contain_text("Canary", timeout=DEPLOY_MS)
    await expect(card.get_by_role("button", name="Promote")).to_be_visible()
    await shot(page, "02c-canary")
    await expect(card).to_contain_text("Production deployment successful", timeout=DEPLOY_MS)
    await expect(card).to_contain_text(f"@{first.name}")
    production = page.locator('#services tr[data-service="audit-svc"] td.where').nth(1)
    await expect(production).to_contain_text("v1.3.0")
    auth = page.locator('#services tr[data-service="auth-svc"] td.where').nth(1)
    await expect(auth).to_contain_text("green v1.3.0 100%")
    await expect(page.locator("#records")).to_contain_text("deployment-record-")
    await shot(page, "03-deployed")
    # auth-svc is a canary in production: what runs it is the colour taking all the traffic.
    versions = {running_version(sandbox, "production", s) for s in sandbox.config.services}
    assert versions == {"v1.3.0"}

    # Break auth-svc v1.4.0, deploy it to staging, watch the automatic rollback.
    row = page.locator('#services tr[data-service="auth-svc"]')
    await row.locator("select[name=version]").select_option("v1.4.0")
    await row.locator("select[name=mode]").select_option("unhealthy")
    await type_in(page, "/deploy staging auth-svc v1.4.0")
    failed = messages.locator(".msg", has_text="Deploy to staging")
    await expect(failed).to_contain_text("Automatic rollback completed")
    await failed.locator("button.replies").click()
    await expect(page.locator("#thread-messages")).to_contain_text("rolled back and healthy")
    await shot(page, "04-rolled-back")
    assert running_version(sandbox, "staging", "auth-svc") == "v1.3.0"

    # A P1 from #incidents: the war room appears in the channel list, with its pinned alert.
    await page.locator("#thread-close").click()
    await be(page, ON_CALL.id)
    await page.locator(f'#channels a[data-channel-id="{INCIDENTS.id}"]').click()
    await type_in(page, "/incident p1 auth-svc login failing")
    room = page.locator("#channels a", has_text="auth-svc-login-failing")
    await expect(room).to_have_class("new")
    await shot(page, "05-war-room-listed")
    await room.click()
    await expect(messages).to_contain_text("📌 Pinned")
    await shot(page, "06-war-room")

    # Its Post update form: the required fields are asked for before anything is sent.
    await messages.get_by_role("button", name="Post update").click()
    modal = page.locator("#modal")
    await expect(modal).to_contain_text("Post update")
    await modal.locator("#modal-submit").click()
    await expect(modal).to_contain_text("Please complete this required field.")
    await shot(page, "07-modal-errors")
    await modal.locator("#modal-close").click()
    await expect(modal).to_be_hidden()
