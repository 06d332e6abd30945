"""A throwaway PostgreSQL cluster for tests: Debian's (or any) PostgreSQL binaries, a cluster
made by initdb in a temporary folder, served on 127.0.0.1 at a free port, gone after.

Use it through the fixtures of `tests/conftest.py`:

- `database`: runs the test twice, given a SQLite file and then a `pg_url` (whatever
  `Store.open` takes); `@pytest.mark.sqlite_only` keeps a test on SQLite.

- `pg_url`: a fresh, migrated, empty database of its own for the test (CREATE DATABASE ...
  TEMPLATE a database migrated once per session, so it takes a few milliseconds), as a
  `postgresql://` URL with a password in it (the cluster trusts local connections, so any
  password works, and tests can check it is never shown):

      async def test_something(pg_url: str) -> None:
          store = await Store.open(pg_url)

- `pg_empty_url`: the same, but not migrated (no tables at all).
- `postgres`: the session's `PostgresCluster` itself (`.database(name)`, `.url(name)`), for
  tests that need several databases or to see the cluster.

One cluster per pytest process (per xdist worker), started on first use (initdb about 2 s),
in /dev/shm when it can be written (so copying a database writes no disk); the tests that use
none of these fixtures never start it. Without PostgreSQL binaries (no initdb under
/usr/lib/postgresql/*/bin, on PATH or in `$PG_BIN`) those tests are skipped and the skip says
so in pytest's summary. The cluster itself is the sandbox's (`sandbox/postgres.py`, which
`chatops-bot sandbox --replicas N` runs on); this module gives it the tests' password and their
`$PG_BIN`.
"""

from __future__ import annotations

import os
from pathlib import Path

from sandbox.postgres import PostgresCluster
from sandbox.postgres import find_binaries as _find_binaries

__all__ = ["PASSWORD", "SKIP_REASON", "PostgresCluster", "find_binaries", "start_cluster"]

SKIP_REASON = (
    "no PostgreSQL binaries (initdb and postgres under /usr/lib/postgresql/*/bin, on PATH or in "
    "$PG_BIN): the PostgreSQL backend is not tested. On Debian: apt-get install postgresql"
)
PASSWORD = "s3cret-pw-never-shown"


def find_binaries() -> Path | None:
    """The folder holding initdb and postgres: $PG_BIN, the newest Debian one, or PATH."""
    return _find_binaries(os.environ.get("PG_BIN"))  # noqa: TID251 - the tests' own knob


def start_cluster(binaries: Path) -> PostgresCluster:
    """A cluster whose URLs carry `PASSWORD`, so tests can check it is never shown."""
    return PostgresCluster.start(binaries, password=PASSWORD)
