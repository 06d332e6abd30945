"""A throwaway PostgreSQL cluster: Debian's (or any) PostgreSQL binaries, a cluster made by
initdb in a temporary folder, served on 127.0.0.1 at a free port, gone after `stop()`.

`chatops-bot sandbox --replicas N` runs its replicas on one; the tests' fixtures
(tests/fakes/postgres.py, tests/conftest.py) start one per pytest process.

The cluster lives in /dev/shm when it can be written (so copying a database writes no disk),
with fsync off: it is for trying and testing, never for data to keep. `find_binaries()` looks
for initdb and postgres in `$PG_BIN` (given), the newest /usr/lib/postgresql/*/bin (Debian's
`postgresql` package), then PATH. Run as root, initdb and postgres run as the `postgres` user,
which the server requires; as anyone else, as themselves. It listens on 127.0.0.1 only, with no
Unix socket, and trusts every connection from this machine.
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

USER = "chatops"
# The cluster trusts connections from this machine, so the password in its URLs is any word.
DEFAULT_PASSWORD = "local-trust"  # noqa: S105 - the server trusts 127.0.0.1; no secret
DEBIAN_PACKAGE = "postgresql"
DEBIAN = Path("/usr/lib/postgresql")  # where the package puts each version's bin/
START_TIMEOUT_S = 30
# mkdtemp makes a folder of its own (mode 0700) in it, as in /tmp.
MEMORY = Path("/dev/shm")  # noqa: S108


def find_binaries(pg_bin: str | None = None) -> Path | None:
    """The folder holding initdb and postgres: `pg_bin` ($PG_BIN), the newest Debian one, or
    PATH."""
    candidates: list[Path] = []
    if pg_bin:
        candidates.append(Path(pg_bin))
    debian = sorted(
        DEBIAN.glob("*/bin"),
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
    """`MEMORY` when it can be written: a cluster in memory makes each CREATE DATABASE (a copy
    of about 8 MB) cost no disk writes. Else the usual temporary folder."""
    shm = MEMORY
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
    password: str = DEFAULT_PASSWORD
    _admin: psycopg.Connection[Any] | None = None

    @classmethod
    def start(cls, binaries: Path, *, password: str = DEFAULT_PASSWORD) -> PostgresCluster:
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
        cluster = cls(folder, port, process, password)
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
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str) -> None:
        """One statement on the maintenance database (CREATE DATABASE, ...), on a connection
        kept open for the session."""
        if self._admin is None or self._admin.closed:
            self._admin = psycopg.connect(self.url("postgres"), autocommit=True)
        self._admin.execute(sql)

    def database(self, name: str, *, template: str | None = None) -> str:
        """Create database `name` (a copy of `template`, when given) and return its URL.

        In memory, FILE_COPY (copy the files, two checkpoints) takes about 15 ms; on a disk its
        checkpoints make it slower than PostgreSQL 15's default, WAL_LOG."""
        strategy = " STRATEGY FILE_COPY" if self.folder.is_relative_to(MEMORY) else ""
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
