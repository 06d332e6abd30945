"""The door of `POST /slack/events`: every request is checked here before Bolt parses anything.

Slack signs `v0:{timestamp}:{body}` with the app's signing secret (HMAC-SHA256) and sends the
timestamp and signature as headers. A request is let in only when both headers have Slack's
form, the timestamp is within five minutes of now, and the signature matches the raw bytes
(compared in constant time); anything else is refused with 401 before its body is decoded. A
signed body Bolt could not read is refused with 400. A request whose signature was already
seen (a replay inside the five minutes) is acknowledged and not acted on again; the
signatures are kept in the store, so this holds across a restart.

Nothing here logs a body, a header or a signature: the caller logs one line per refusal.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from aiohttp import web

from store.requests import SeenRequests

# Slack: "verify that the timestamp is within five minutes of the local time".
SIGNATURE_WINDOW_S = 300
# A Unix time in seconds, ASCII digits only: `1e10`, `-5` or `１２３` are not timestamps.
_TIMESTAMP = re.compile(r"[0-9]{1,10}", re.ASCII)
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}", re.ASCII)


@dataclass(frozen=True)
class Refused:
    """The answer to a request that is not let in; `reason` is for the log, never the body."""

    status: int
    reason: str

    def response(self) -> web.Response:
        error = "invalid request" if self.status == 401 else "bad request"
        return web.json_response({"error": error}, status=self.status)


@dataclass(frozen=True)
class Admitted:
    """A request Slack signed: its body, and whether it was seen before (a replay)."""

    body: str
    replay: bool


class RequestGuard:
    """Checks requests against the signing secret; remembers signatures in `seen`."""

    def __init__(
        self,
        secret: str,
        seen: SeenRequests,
        *,
        wall_time: Callable[[], float] = time.time,
    ) -> None:
        # Slack's timestamps are wall-clock seconds, so the window is too (not the injected
        # clock of the engine).
        self._secret = secret.encode()
        self._seen = seen
        self._wall_time = wall_time

    async def check(self, request: web.Request) -> Admitted | Refused:
        """Admit or refuse `request`. Reads its body only once its headers have the right form;
        a body over the server's limit raises aiohttp's 413."""
        stamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if not _TIMESTAMP.fullmatch(stamp):
            return Refused(401, "no valid X-Slack-Request-Timestamp")
        if not _SIGNATURE.fullmatch(signature):
            return Refused(401, "no valid X-Slack-Signature")
        now = self._wall_time()
        if abs(now - int(stamp)) > SIGNATURE_WINDOW_S:
            return Refused(401, "timestamp more than five minutes from now")
        raw = await request.read()
        expected = hmac.new(self._secret, b"v0:" + stamp.encode() + b":" + raw, hashlib.sha256)
        if not hmac.compare_digest("v0=" + expected.hexdigest(), signature):
            return Refused(401, "signature does not match")
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            return Refused(400, "signed body is not UTF-8")
        problem = _unreadable(body, request.content_type)
        if problem is not None:
            return Refused(400, problem)
        first = await self._seen.first_sight(
            signature,
            expires_at=_utc(int(stamp) + SIGNATURE_WINDOW_S),
            now=_utc(now),
        )
        return Admitted(body, replay=not first)


def _unreadable(body: str, content_type: str) -> str | None:
    """Why Bolt could not read `body` as a JSON object or a form (with a JSON `payload`)."""
    if content_type == "application/json" or body.startswith("{"):
        return None if _json_object(body) else "signed body is not a JSON object"
    if "payload" in body:
        payload = dict(parse_qsl(body, keep_blank_values=True)).get("payload")
        if payload is not None and not _json_object(payload):
            return "signed form's payload is not a JSON object"
    return None


def _json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)
