"""The store's tests run on both backends: `database` is a SQLite file, then a fresh PostgreSQL
database (tests/fakes/postgres.py; skipped, saying why, where PostgreSQL is not installed).
A test marked `sqlite_only` (it reads SQLite's own query plans) runs on SQLite alone."""

from __future__ import annotations

from pathlib import Path

import pytest

BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database" in metafunc.fixturenames:
        only = metafunc.definition.get_closest_marker("sqlite_only") is not None
        metafunc.parametrize("database", BACKENDS[:1] if only else BACKENDS, indirect=True)


@pytest.fixture
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """What `Store.open` is given: a new SQLite file, or the URL of a new PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "chatops.db"
    url: str = request.getfixturevalue("pg_url")
    return url
