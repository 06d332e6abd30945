"""Statements the repositories hand to `Store.call`, written once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from store.database import Database

T = TypeVar("T")


def changes_one(sql: str, params: Sequence[Any]) -> Callable[[Database], bool]:
    """A compare-and-set: True when the statement changed exactly one row, False when the row
    had moved on (or was never there)."""

    def run(db: Database) -> bool:
        return db.execute(sql, list(params)).rowcount == 1

    return run


def all_rows(
    sql: str, params: Sequence[Any], make: Callable[[Any], T]
) -> Callable[[Database], list[T]]:
    """A read: each row the statement returns, in its order, made into a value by `make`."""

    def run(db: Database) -> list[T]:
        return [make(row) for row in db.execute(sql, list(params)).fetchall()]

    return run
