"""Fixtures for the local Slack's own tests: a running `LocalSlack` and a real AsyncWebClient."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import LocalSlack


@pytest.fixture
async def fake() -> AsyncIterator[LocalSlack]:
    """A local Slack that grants every scope."""
    async with LocalSlack(groups={"S0LEADS": ["ULEAD1", "ULEAD2"]}) as slack:
        yield slack


@pytest.fixture
def client(fake: LocalSlack) -> AsyncWebClient:
    return AsyncWebClient(base_url=fake.api_url, token="xoxb-test")
