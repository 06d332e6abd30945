"""Seen and open requests on a real SQLite file: replays remembered until they expire, and the
journal of requests in progress."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from store.audit import AuditEntry, AuditLog
from store.db import Store
from store.requests import OpenRequests, SeenRequests

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=5)


@pytest.fixture
async def store(database: Path | str) -> AsyncIterator[Store]:
    s = await Store.open(database)
    yield s
    await s.close()


async def test_a_key_is_new_once_and_then_seen_until_it_expires(store: Store) -> None:
    seen = SeenRequests(store)

    first = await seen.first_sight("v0=abc", expires_at=T0 + WINDOW, now=T0)
    again = await seen.first_sight("v0=abc", expires_at=T0 + WINDOW, now=T0 + WINDOW)

    assert (first, again) == (True, False)


async def test_expired_keys_are_forgotten_so_the_table_stays_small(store: Store) -> None:
    seen = SeenRequests(store)
    for i in range(3):
        await seen.first_sight(f"v0={i}", expires_at=T0 + WINDOW, now=T0)

    later = T0 + WINDOW + timedelta(seconds=1)
    fresh = await seen.first_sight("v0=new", expires_at=later + WINDOW, now=later)

    assert fresh
    assert await seen.count() == 1


async def test_seen_keys_survive_reopening_the_database(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    store = await Store.open(path)
    await SeenRequests(store).first_sight("v0=abc", expires_at=T0 + WINDOW, now=T0)
    await store.close()

    reopened = await Store.open(path)
    try:
        again = await SeenRequests(reopened).first_sight("v0=abc", expires_at=T0 + WINDOW, now=T0)
    finally:
        await reopened.close()

    assert again is False


async def test_the_journal_keeps_what_was_opened_and_not_closed(store: Store) -> None:
    journal = OpenRequests(store)
    done = await journal.open(at=T0, actor="UDEV", action="/deploy help", channel_id="C1", ref=None)
    await journal.open(
        at=T0, actor="UDEV", action="/deploy staging all v1.4.0", channel_id="C1", ref="run-1"
    )

    await journal.finish(
        done, AuditEntry(at=T0, actor="UDEV", action="/deploy help", outcome="help")
    )

    [left] = await journal.left_open()
    assert (left.actor, left.action, left.channel_id, left.ref) == (
        "UDEV",
        "/deploy staging all v1.4.0",
        "C1",
        "run-1",
    )
    [audited] = await AuditLog(store).recent()
    assert (audited.action, audited.outcome) == ("/deploy help", "help")
