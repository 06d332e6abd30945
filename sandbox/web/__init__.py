"""The sandbox page: a Slack-like client of the local Slack in the browser (see `page`)."""

from __future__ import annotations

from sandbox.web.page import Page

__all__ = ["Page"]
