"""The change feed: every change to the workspace, fanned out to asyncio queues.

A web page streams it: `with feed.subscription() as queue:` then `await queue.get()` in a loop
(or `subscribe()` and, when the page goes away, `unsubscribe(queue)`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ChangeKind(StrEnum):
    MESSAGE_POSTED = "message_posted"
    MESSAGE_UPDATED = "message_updated"
    MESSAGE_DELETED = "message_deleted"
    EPHEMERAL = "ephemeral"
    CHANNEL_CREATED = "channel_created"
    CHANNEL_CHANGED = "channel_changed"
    PINNED = "pinned"
    VIEW_OPENED = "view_opened"
    VIEW_UPDATED = "view_updated"
    VIEW_PUSHED = "view_pushed"
    VIEW_CLOSED = "view_closed"
    HOME_PUBLISHED = "home_published"


@dataclass(frozen=True)
class Change:
    """What changed, in which channel (None for views), as the Web API would show it."""

    kind: ChangeKind
    channel: str | None
    data: dict[str, Any]


class ChangeFeed:
    """Fan-out of `Change`s to every subscriber's unbounded queue; publishing never blocks."""

    def __init__(self) -> None:
        self._queues: list[asyncio.Queue[Change]] = []

    def subscribe(self) -> asyncio.Queue[Change]:
        queue: asyncio.Queue[Change] = asyncio.Queue()
        self._queues.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Change]) -> None:
        if queue in self._queues:
            self._queues.remove(queue)

    @contextmanager
    def subscription(self) -> Iterator[asyncio.Queue[Change]]:
        """A queue of changes for the duration of a `with` block."""
        queue = self.subscribe()
        try:
            yield queue
        finally:
            self.unsubscribe(queue)

    def publish(self, change: Change) -> None:
        for queue in self._queues:
            queue.put_nowait(change)
