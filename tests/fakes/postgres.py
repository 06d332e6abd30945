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
so in pytest's summary. Run as root (CI), initdb and postgres run as the `postgres` user, which
the server requires; as anyone else, as themselves.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

SKIP_REASON = (
    "no PostgreSQL binaries (initdb and postgres under /usr/lib/postgresql/*/bin, on PATH or in "
    "$PG_BIN): the PostgreSQL backend is not tested. On Debian: apt-get install postgresql"
)
PASSWORD = "s3cret-pw-never-shown"
USER = "chatops"
START_TIMEOUT_S = 30


def find_binaries() -> Path | None:
    """The folder holding initdb and postgres: $PG_BIN, the newest Debian one, or PATH."""
    candidates: list[Path] = []
    if os.environ.get("PG_BIN"):  # noqa: TID251 - the tests' own knob, not the bot's settings
        candidates.append(Path(os.environ["PG_BIN"]))  # noqa: TID251
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += debian
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    return None


def _memory_folder() -> str | None:
    """/dev/shm when it can be written: a cluster in memory makes each CREATE DATABASE (a copy of
    about 8 MB) cost no disk writes. Else the usual temporary folder."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class PostgresCluster:
    """A running throwaway cluster. `start()` it, `stop()` it (removes its folder)."""

    folder: Path
    port: int
    process: subprocess.Popen[bytes]
    _admin: psycopg.Connection[Any] | None = None

    @classmethod
    def start(cls, binaries: Path) -> PostgresCluster:
        as_user: dict[str, Any] = {}
        folder = Path(tempfile.mkdtemp(prefix="chatops-pg-", dir=_memory_folder()))
        if os.geteuid() == 0:
            # The server refuses to run as root: hand it the folder and run it as `postgres`.
            owner = pwd.getpwnam("postgres")
            os.chown(folder, owner.pw_uid, owner.pw_gid)
            as_user = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
        data = folder / "data"
        subprocess.run(  # noqa: S603 - PostgreSQL's own initdb, fixed arguments
            [
                str(binaries / "initdb"),
                "-D",
                str(data),
                "-U",
                USER,
                "--auth=trust",
                "--no-sync",
                "--encoding=UTF8",
                "--locale=C",
            ],
            check=True,
            capture_output=True,
            cwd=folder,
            **as_user,
        )
        port = _free_port()
        with (folder / "server.log").open("wb") as log:
            process = subprocess.Popen(  # noqa: S603 - PostgreSQL's own server
                [
                    str(binaries / "postgres"),
                    "-D",
                    str(data),
                    "-p",
                    str(port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "unix_socket_directories=",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=100",
                    "-c",
                    "max_wal_size=64MB",
                    "-c",
                    "min_wal_size=32MB",
                    "-c",
                    "shared_buffers=32MB",
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
                cwd=folder,
                **as_user,
            )
        cluster = cls(folder, port, process)
        cluster._wait_ready()
        return cluster

    def _wait_ready(self) -> None:
        """Wait until the server takes connections (or exited, or the timeout)."""
        for _ in range(START_TIMEOUT_S * 20):
            if self.process.poll() is not None:
                break
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=1).close()
                return
            except psycopg.OperationalError:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(0.05)
        log = (self.folder / "server.log").read_text(errors="replace")
        self.stop()
        raise RuntimeError(f"PostgreSQL did not start:\n{log}")

    def url(self, database: str) -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str) -> None:
        """One statement on the maintenance database (CREATE DATABASE, ...), on a connection
        kept open for the session."""
        if self._admin is None or self._admin.closed:
            self._admin = psycopg.connect(self.url("postgres"), autocommit=True)
        self._admin.execute(sql)  # type: ignore[arg-type]

    def database(self, name: str, *, template: str | None = None) -> str:
        """Create database `name` (a copy of `template`, when given) and return its URL.

        In memory, FILE_COPY (copy the files, two checkpoints) takes about 15 ms; on a disk its
        checkpoints make it slower than PostgreSQL 15's default, WAL_LOG."""
        strategy = " STRATEGY FILE_COPY" if str(self.folder).startswith("/dev/shm") else ""
        copy = f" TEMPLATE {template}{strategy}" if template else ""
        self.execute(f"CREATE DATABASE {name}{copy}")
        return self.url(name)

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown (SIGTERM waits for clients)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
