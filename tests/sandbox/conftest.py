"""Fixtures: a running `LocalSlack` with a real AsyncWebClient, and the whole sandbox."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import LocalSlack
from sandbox.stack import Options, Sandbox, open_sandbox
from tests.fakes.clock import AutojumpClock
from tests.sandbox.sandbox_client import TEST_BAKES


@pytest.fixture
async def fake() -> AsyncIterator[LocalSlack]:
    """A local Slack that grants every scope."""
    async with LocalSlack(groups={"S0LEADS": ["ULEAD1", "ULEAD2"]}) as slack:
        yield slack


@pytest.fixture
def client(fake: LocalSlack) -> AsyncWebClient:
    return AsyncWebClient(base_url=fake.api_url, token="xoxb-test")


@pytest.fixture
async def sandbox_clock() -> AsyncIterator[AutojumpClock]:
    """The sandbox's virtual time: it jumps to the next due time whenever the sandbox waits."""
    clock = AutojumpClock()
    async with clock.running():
        yield clock


@pytest.fixture
async def sandbox(
    request: pytest.FixtureRequest, tmp_path: Path, sandbox_clock: AutojumpClock
) -> AsyncIterator[Sandbox]:
    """The whole sandbox in this process, its page on a free port, on virtual time (its bot,
    its demo traffic and the bot's timers), baking canaries for `TEST_BAKES` unless the test is
    marked `sandbox_bakes(...)`."""
    marker = request.node.get_closest_marker("sandbox_bakes")
    bakes = TEST_BAKES if marker is None else marker.args[0]
    options = Options(
        directory=tmp_path / "sandbox", port=0, canary_bakes=bakes, clock=sandbox_clock
    )
    async with open_sandbox(options) as running:
        yield running
    # Anything the sandbox left unclosed is reported against this test, not a later one.
    gc.collect()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
