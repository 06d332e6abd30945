"""Failures the local Slack injects per method, to test what the bot does when Slack misbehaves.

Queued faults are used up in order, one per call: Slack errors (`fail_next`), bare HTTP errors,
rate limits. `delay` slows every call of a method; `accept_then_fail` lets the call take effect
and then loses the answer (HTTP 500, or no answer until the server closes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Injected:
    """An answer that replaces Slack's, and a label for the recorded call."""

    response: web.Response
    label: str


@dataclass(frozen=True)
class LostAnswer:
    """Take the call's effect, then answer `status`, or with `hang` never answer."""

    status: int = 500
    hang: bool = False


class Faults:
    """Per-method fault queues. `errors` is the `fail_next` queue, by method."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}
        self._http: dict[str, list[tuple[int, str | None]]] = {}
        self._rate: dict[str, list[int]] = {}
        self._delays: dict[str, float] = {}
        self._lost: dict[str, list[LostAnswer]] = {}
        self._late: dict[str, list[float]] = {}

    def fail_next(self, method: str, error: str) -> None:
        """The next call to `method` answers `{"ok": false, "error": error}` and does nothing."""
        self.errors.setdefault(method, []).append(error)

    def http_error_next(
        self, method: str, status: int = 500, *, times: int = 1, ts: str | None = None
    ) -> None:
        """The next `times` calls answer HTTP `status` with a plain-text body and do nothing;
        with `ts`, only calls about that message (a card, not its thread's replies)."""
        self._http.setdefault(method, []).extend([(status, ts)] * times)

    def rate_limit_next(self, method: str, retry_after: int = 1, *, times: int = 1) -> None:
        """The next `times` calls answer HTTP 429, `Retry-After: retry_after`, `ratelimited`."""
        self._rate.setdefault(method, []).extend([retry_after] * times)

    def delay(self, method: str, seconds: float) -> None:
        """Every call to `method` waits `seconds` (real time) before it is served; 0 stops it."""
        if seconds > 0:
            self._delays[method] = seconds
        else:
            self._delays.pop(method, None)

    def accept_then_fail(
        self, method: str, *, status: int = 500, hang: bool = False, times: int = 1
    ) -> None:
        """The next `times` successful calls take effect, then answer `status` (or hang).

        This is "Slack posted it, but we never saw the answer": a retry would post twice.
        """
        self._lost.setdefault(method, []).extend([LostAnswer(status, hang)] * times)

    def answer_late(self, method: str, seconds: float, *, times: int = 1) -> None:
        """The next `times` successful calls take effect at once and answer `seconds` later.

        This is "Slack posted it and was slow to say so": what the message shows (its buttons)
        can be used before the bot has heard back.
        """
        self._late.setdefault(method, []).extend([seconds] * times)

    def delay_for(self, method: str) -> float:
        return self._delays.get(method, 0.0)

    def injected(self, method: str, args: Mapping[str, Any]) -> Injected | None:
        """Use up the first queued fault for `method` (and its message), if any."""
        if self.errors.get(method):
            error = self.errors[method].pop(0)
            return Injected(web.json_response({"ok": False, "error": error}), error)
        queued = self._http.get(method, [])
        hit = next((i for i, (_, ts) in enumerate(queued) if ts in (None, args.get("ts"))), None)
        if hit is not None:
            status, _ = queued.pop(hit)
            return Injected(web.Response(status=status, text="Slack is unwell"), f"http_{status}")
        if self._rate.get(method):
            retry_after = self._rate[method].pop(0)
            response = web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(retry_after)},
            )
            return Injected(response, "ratelimited")
        return None

    def late_answer(self, method: str) -> float:
        """Use up the first `answer_late` for `method`: how long to hold its answer, else 0."""
        queued = self._late.get(method)
        return queued.pop(0) if queued else 0.0

    def lost_answer(self, method: str) -> LostAnswer | None:
        """Use up the first `accept_then_fail` for `method`, if any."""
        queued = self._lost.get(method)
        return queued.pop(0) if queued else None
