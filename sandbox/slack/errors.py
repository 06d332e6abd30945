"""`SlackError`: a Web API failure as Slack reports it, with its error code and extra fields."""

from __future__ import annotations

from typing import Any


class SlackError(Exception):
    """A call Slack refuses: answered with HTTP 200 and `{"ok": false, "error": code, ...}`.

    `detail` becomes Slack's `response_metadata.messages` line; `extra` is merged into the answer
    (for example `needed` and `provided` of `missing_scope`).
    """

    def __init__(self, code: str, detail: str | None = None, **extra: Any) -> None:
        super().__init__(code if detail is None else f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.extra = extra

    def answer(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error": self.code, **self.extra}
        if self.detail is not None:
            body["response_metadata"] = {"messages": [f"[ERROR] {self.detail}"]}
        return body
