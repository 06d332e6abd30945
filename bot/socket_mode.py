"""Socket Mode with the same replay guard as HTTP: an envelope is acted on once.

Over Socket Mode there is no signature to check (the WebSocket itself is opened with the app
token). Slack re-sends an envelope it saw no acknowledgement for; the bot acknowledges
commands, clicks and its one Events API event (`app_home_opened`) at once, so a repeated
envelope id is a duplicate: it is acknowledged again and not acted on. Envelope ids are kept
in the store for `ENVELOPE_MEMORY_S`, so this holds across a restart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from store.requests import SeenRequests

log = logging.getLogger(__name__)

# Slack retries an unacknowledged envelope within minutes; ten cover them with room to spare.
ENVELOPE_MEMORY_S = 600.0


class OnceSocketModeHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode handler that skips envelopes it has already handled."""

    def __init__(
        self,
        app: AsyncApp,
        app_token: str,
        *,
        web_client: AsyncWebClient,
        seen: SeenRequests,
        wall_time: Callable[[], float] = time.time,
        acked: Callable[[float], None] | None = None,
    ) -> None:
        """`acked(seconds)` hears how long each envelope took to acknowledge (the metrics)."""
        super().__init__(app, app_token, web_client=web_client)
        self._seen = seen
        self._wall_time = wall_time
        self._acked = acked

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        arrived = time.perf_counter()
        now = datetime.fromtimestamp(self._wall_time(), tz=UTC)
        first = await self._seen.first_sight(
            f"envelope:{req.envelope_id}",
            expires_at=now + timedelta(seconds=ENVELOPE_MEMORY_S),
            now=now,
        )
        if not first:
            log.warning("acknowledged envelope %s again without acting on it", req.envelope_id)
            await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
            return
        # Bolt acknowledges before the listener's work goes on (process_before_response off).
        await super().handle(client, req)
        if self._acked is not None:
            self._acked(time.perf_counter() - arrived)
