"""What a repository's `fn(db)` may use of the database: the same small subset on both backends.

On SQLite `db` is a sqlite-utils `Database`; on PostgreSQL it is `store.backends.postgres`'s
`PgDatabase`, which offers exactly this and translates the SQL. Statements are written with `?`
(or `:name`) placeholders in the SQL both engines accept; what differs between the engines is
in `store.backends`, one module per engine, never here or in a repository.

Writing SQL for both: `INSERT ... ON CONFLICT DO NOTHING` (or `DO UPDATE`), not `INSERT OR`;
`RETURNING id`, not `lastrowid`; `LIKE` with the case the code wrote (PostgreSQL's is
case-sensitive); `NULLS FIRST`/`NULLS LAST` when ordering by a column that may be NULL
(the engines sort NULL at opposite ends); an `INSERT` names its columns (PostgreSQL's tables
carry a `rowid` column first); and column types in capitals (`TEXT`, `INTEGER`, `REAL`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol


class Cursor(Protocol):
    """The result of one statement."""

    @property
    def rowcount(self) -> int: ...

    @property
    def description(self) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Table(Protocol):
    """Inserts of whole rows (dicts of column -> value) and an update by primary key."""

    def insert(self, record: dict[str, Any], /) -> object: ...

    def insert_all(self, records: Iterable[dict[str, Any]], /) -> object: ...

    def update(self, pk_values: str, updates: dict[str, Any] | None = None, /) -> object: ...


class Database(Protocol):
    """One connection, used only on the store's thread."""

    def execute(
        self, sql: str, parameters: Sequence[Any] | dict[str, Any] | None = None, /
    ) -> Cursor: ...

    def table(self, name: str, /) -> Table: ...

    def atomic(self) -> AbstractContextManager[object]:
        """A transaction; nested, a savepoint (undone alone when its block raises)."""
        ...
