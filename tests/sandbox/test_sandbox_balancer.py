"""The sandbox's load balancer for `--replicas N`: requests go to the live replicas in turn,
a killed one is skipped, and with none live the local Slack gets a 503, as from a real one.

The replicas here are real processes that only sleep (the bot itself is started by
tests/sandbox/test_sandbox_replicas.py); what is tested is the turn-taking and the kill.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox.replicas import BalancedDelivery, NoLiveReplica, Replicas, replica_names
from sandbox.slack import LocalSlack


@pytest.fixture
async def replicas(tmp_path: Path) -> AsyncIterator[Replicas]:
    pool = Replicas(
        replica_names(3),
        env={},
        directory=tmp_path,
        database_url="postgresql://unused@127.0.0.1:1/none",
        events_path="/slack/events",
    )
    for port, replica in enumerate(pool.replicas.values(), start=41001):
        replica.port = port
        replica.process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import time; time.sleep(60)"
        )
        replica.state = "live"
    yield pool
    await pool.close()


async def test_requests_go_to_the_live_replicas_in_turn_skipping_a_killed_one(
    replicas: Replicas,
) -> None:
    turns = [replicas.next_url() for _ in range(4)]
    await replicas.kill("replica-2")
    after = [replicas.next_url() for _ in range(4)]

    assert [u.split(":")[-1] for u in turns] == [
        "41001/slack/events",
        "41002/slack/events",
        "41003/slack/events",
        "41001/slack/events",
    ]
    assert sorted({u.split(":")[-1] for u in after}) == ["41001/slack/events", "41003/slack/events"]
    assert replicas.get("replica-2").shown == "killed"
    killed = replicas.get("replica-2").process
    assert killed is not None
    assert killed.returncode == -9  # SIGKILL


async def test_a_replica_that_exits_on_its_own_is_shown_exited_and_skipped(
    replicas: Replicas,
) -> None:
    process = replicas.get("replica-3").process
    assert process is not None
    process.terminate()
    await process.wait()

    assert replicas.get("replica-3").shown == "exited"
    assert {replicas.next_url() for _ in range(4)} == {
        "http://127.0.0.1:41001/slack/events",
        "http://127.0.0.1:41002/slack/events",
    }


async def test_with_every_replica_killed_slack_gets_a_503_and_nothing_is_sent(
    replicas: Replicas, fake: LocalSlack
) -> None:
    for name in list(replicas.replicas):
        await replicas.kill(name)
    delivery = BalancedDelivery(fake, replicas, signing_secret="s3cret")

    ack = await delivery.command("/deploy", "staging all", user="ULEAD1", channel="C1")

    assert ack.status == 503
    with pytest.raises(NoLiveReplica, match="every replica is killed"):
        replicas.next_url()
    await delivery.close()
