"""Statements the repositories hand to `Store.call`, written once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlite_utils


def changes_one(sql: str, params: Sequence[Any]) -> Callable[[sqlite_utils.Database], bool]:
    """A compare-and-set: True when the statement changed exactly one row, False when the row
    had moved on (or was never there)."""

    def run(db: sqlite_utils.Database) -> bool:
        return db.execute(sql, list(params)).rowcount == 1

    return run
