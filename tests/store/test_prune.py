"""Pruning on a real SQLite file: audit rows past their retention and replay keys past Slack's
window go; everything younger stays (issue 19, point 7)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from store.audit import AuditEntry, AuditLog
from store.db import Store
from store.prune import Pruned, Pruner
from store.requests import SeenRequests

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=5)
DAY_S = 86400.0


@pytest.fixture
async def store(database: Path | str) -> AsyncIterator[Store]:
    s = await Store.open(database)
    yield s
    await s.close()


async def _audit(store: Store, at: datetime, action: str) -> None:
    await AuditLog(store).record(AuditEntry(at=at, actor="U1", action=action, outcome="ok"))


async def test_audit_rows_older_than_the_retention_are_deleted_and_younger_ones_kept(
    store: Store,
) -> None:
    await _audit(store, T0, "old")
    await _audit(store, T0 + timedelta(days=89, hours=23), "young")
    await _audit(store, T0 + timedelta(days=90, microseconds=1), "younger, other precision")

    pruned = await Pruner(store, audit_retention_s=90 * DAY_S).prune(
        T0 + timedelta(days=90, hours=1)
    )

    assert pruned == Pruned(audit_rows=1, replay_keys=0)
    assert [e.action for e in await AuditLog(store).recent()] == [
        "younger, other precision",
        "young",
    ]


async def test_a_replay_key_stays_until_slacks_window_for_it_has_passed(store: Store) -> None:
    seen = SeenRequests(store)
    await seen.first_sight("v0=early", expires_at=T0 + WINDOW, now=T0)
    await seen.first_sight("v0=late", expires_at=T0 + 2 * WINDOW, now=T0)
    pruner = Pruner(store, audit_retention_s=DAY_S)

    inside = await pruner.prune(T0 + WINDOW)
    after = await pruner.prune(T0 + WINDOW + timedelta(seconds=1))

    assert (inside.replay_keys, after.replay_keys) == (0, 1)
    assert await seen.count() == 1
    assert not await seen.first_sight("v0=late", expires_at=T0 + 2 * WINDOW, now=T0)


async def test_an_audit_time_with_another_offset_is_compared_as_an_instant(store: Store) -> None:
    """09:30+02:00 is 07:30 UTC: older than a cut-off at 08:00 UTC, though it sorts after it."""
    await _audit(store, datetime.fromisoformat("2026-11-22T09:30:00+02:00"), "abroad")

    pruned = await Pruner(store, audit_retention_s=DAY_S).prune(
        datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    )

    assert pruned.audit_rows == 1


def test_a_retention_of_zero_is_refused_before_it_could_delete_everything(store: Store) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        Pruner(store, audit_retention_s=0)
