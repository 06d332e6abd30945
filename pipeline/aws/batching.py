"""Concurrent single-item reads merged into AWS's batched calls (ECS DescribeServices takes 10
services, ECR DescribeImages 100 image ids). Reads only: a mutation is never merged.

Callers ask for one item and await it; the first caller of a group (a cluster, a repository)
waits one turn of the event loop so the others asked for in the same turn join it, then sends
them in batches, concurrently, and hands each caller its own answer (or its own error).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Hashable, Sequence
from typing import Any, Generic, TypeVar

G = TypeVar("G", bound=Hashable)
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Fetch = Callable[[G, Sequence[K]], Coroutine[Any, Any, dict[K, V | Exception]]]


class LRU(Generic[K, V]):
    """At most `size` values, the least recently used dropped first. Used on the loop only."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._values: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._values.get(key)
        if value is not None:
            self._values.move_to_end(key)
        return value

    def __setitem__(self, key: K, value: V) -> None:
        self._values[key] = value
        self._values.move_to_end(key)
        while len(self._values) > self._size:
            self._values.popitem(last=False)


class _LeaderGone(Exception):
    """The caller sending a batch was cancelled before it was answered: ask again."""


class Coalescer(Generic[G, K, V]):
    """Merges `get(group, key)` calls made in the same turn of the loop into `fetch(group,
    keys)` calls of at most `batch_size` keys. `fetch` answers each key with its value or the
    exception that caller should see; a key it leaves out raises a RuntimeError."""

    def __init__(self, fetch: Fetch[G, K, V], *, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"A batch holds at least one key, not {batch_size}.")
        self._fetch = fetch
        self._batch_size = batch_size
        self._waiting: dict[G, dict[K, asyncio.Future[V]]] = {}

    async def get(self, group: G, key: K) -> V:
        while True:
            waiting = self._waiting.setdefault(group, {})
            future = waiting.get(key)
            if future is not None:
                try:
                    # Shielded: this caller's cancellation must not cancel the answer others
                    # asking for the same key wait for.
                    return await asyncio.shield(future)
                except _LeaderGone:
                    continue
            future = asyncio.get_running_loop().create_future()
            waiting[key] = future
            if len(waiting) > 1:
                try:
                    return await asyncio.shield(future)
                except _LeaderGone:
                    continue
            return await self._lead(group, future)

    async def _lead(self, group: G, own: asyncio.Future[V]) -> V:
        batch: dict[K, asyncio.Future[V]] = {}
        try:
            await asyncio.sleep(0)
            batch = self._waiting.pop(group)
            keys = list(batch)
            chunks = [keys[i : i + self._batch_size] for i in range(0, len(keys), self._batch_size)]
            async with asyncio.TaskGroup() as tg:
                answers = [tg.create_task(self._fetch(group, chunk)) for chunk in chunks]
        except Exception as exc:  # noqa: BLE001 - handed on to each caller, this one too
            # One failed call fails its whole batch, as one error (not a group) for each.
            _fail_all(batch, _first_leaf(exc))
        except BaseException:
            _fail_all(batch or self._waiting.pop(group, {}), _LeaderGone())
            raise
        else:
            for chunk, answer in zip(chunks, answers, strict=True):
                for key in chunk:
                    value = answer.result().get(key, RuntimeError(f"No answer for {key!r}."))
                    _answer(batch[key], value)
        return own.result()


def _first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def _fail_all(batch: dict[K, asyncio.Future[V]], exc: BaseException) -> None:
    for future in batch.values():
        _answer(future, exc)


def _answer(future: asyncio.Future[V], value: V | BaseException) -> None:
    if future.done():
        return
    if isinstance(value, BaseException):
        future.set_exception(value)
        # Marked as seen: a caller that was cancelled meanwhile will never read it.
        future.exception()
    else:
        future.set_result(value)
