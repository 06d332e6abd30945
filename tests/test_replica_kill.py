"""Three real `chatops-bot serve` replicas on one database; the owner of a rollout is killed
with SIGKILL while ECS rolls it out, and another replica finishes it: one RegisterTaskDefinition,
one UpdateService, one card that says how it ended.

The rig is the crash matrix's (a moto server behind a fault-injecting proxy, the local Slack, a
local health server); the replicas share one database, a SQLite file in WAL mode and then a
PostgreSQL database, with short leases so the takeover takes a couple of seconds. `pytest -s`
prints the takeover time.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.deploy.adapter import CARD_EVENT
from tests.fakes.ecs import revisions
from tests.test_crash_matrix import (
    CHANNEL,
    COMMAND,
    FINAL,
    FINAL_BACKSTOP_S,
    SERVICE,
    STEP_BACKSTOP_S,
    BotProcess,
    Db,
    Rig,
    _bot_env,
    _card_text,
    _config,
    _held,
    _until,
    rig,  # noqa: F401 - the crash matrix's fixture
)

pytestmark = pytest.mark.slow

# Short leases keep the test quick; `REPLICA_KILL_TTL_S=20 REPLICA_KILL_RENEW_S=5` measures
# the defaults.
TTL_S = float(os.environ.get("REPLICA_KILL_TTL_S", "2"))  # noqa: TID251 - a measuring knob
RENEW_S = float(os.environ.get("REPLICA_KILL_RENEW_S", "0.5"))  # noqa: TID251
REPLICAS = ("replica-1", "replica-2", "replica-3")


class PgDb(Db):
    """The PostgreSQL database, read as `Db` reads the SQLite file."""

    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return list(conn.execute(sql.replace("?", "%s"), args).fetchall())


def _owner(db: Db, run_id: str) -> tuple[str, int] | None:
    rows = db.query("SELECT owner, generation FROM leases WHERE name = ?", (f"run:{run_id}",))
    return (rows[0][0], rows[0][1]) if rows else None


async def test_the_owner_killed_mid_rollout_is_taken_over_by_another_replica_once(
    rig: Rig,  # noqa: F811
    tmp_path: Path,
    database: Path | str,
) -> None:
    config = tmp_path / "chatops.toml"
    _config(config, rig.health)
    db = PgDb(database) if isinstance(database, str) else Db(database)
    env = {
        **_bot_env(rig, config, Db(tmp_path / "unused.db")),
        **({"CHATOPS_DATABASE_URL": database} if isinstance(database, str) else {}),
        **({} if isinstance(database, str) else {"CHATOPS_DB": str(database)}),
        "CHATOPS_LEASE_TTL_S": str(TTL_S),
        "CHATOPS_LEASE_RENEW_S": str(RENEW_S),
    }
    bots = [
        BotProcess({**env, "CHATOPS_REPLICA_ID": name}, tmp_path, tmp_path / f"{name}.log")
        for name in REPLICAS
    ]
    reached = _held(rig, "DescribeServices", once=("UpdateService", 1))
    try:
        for bot in bots:
            await bot.start()
        assert await bots[0].deploy(rig.slack, COMMAND) == 200
        await asyncio.wait_for(reached(), STEP_BACKSTOP_S)
        run = db.run()
        assert run is not None
        assert _owner(db, run[0]) == ("replica-1", 1)

        await bots[0].kill()
        killed = time.monotonic()
        await _until(
            lambda: (_owner(db, run[0]) or ("", 0))[0] != "replica-1", "a takeover", 10 * TTL_S
        )
        takeover_s = time.monotonic() - killed
        await _until(
            lambda: (
                (done := db.run()) is not None
                and done[1] in FINAL
                and FINAL[done[1]] in _card_text(rig.slack, done[2])
            ),
            "a final state on the card",
            FINAL_BACKSTOP_S,
        )
    finally:
        for bot in bots:
            await bot.stop()

    _, state, card_ts, new_td = db.run() or ("", "", None, None)
    owner = _owner(db, run[0])
    cards = [
        m
        for m in rig.slack.workspace.channel(CHANNEL).messages
        if m.thread_ts is None and (m.metadata or {}).get("event_type") == CARD_EVENT
    ]
    print(
        f"\ntakeover {takeover_s:.2f}s after SIGKILL (lease {TTL_S:g}s, renewed every {RENEW_S:g}s)"
    )
    assert state == "succeeded"
    assert owner is not None
    assert owner[0] in REPLICAS[1:]
    assert owner[1] == 2
    assert takeover_s <= TTL_S + 2 * RENEW_S + 1.0
    assert rig.proxy.count("RegisterTaskDefinition") == 1
    assert rig.proxy.count("UpdateService") == 1
    assert len(revisions(rig.world, "staging", SERVICE)) == 2
    assert rig.world.task_definition("staging", SERVICE) == new_td
    assert [c.ts for c in cards] == [card_ts]
    assert "✅ Staging deployment successful" in _card_text(rig.slack, card_ts)
