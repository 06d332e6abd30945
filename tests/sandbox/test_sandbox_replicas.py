"""`chatops-bot sandbox --replicas 2`: two bot processes on a throwaway PostgreSQL, driven
through the page's HTTP API as a person would. The owner of a canary is killed mid-bake from the
page; the other replica takes the run over and finishes it, on the same one card.

Real time (processes, leases of 3 s), so marked slow; skipped, saying so, without PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sandbox.people import APPROVERS, REQUESTER
from sandbox.stack import Options, Sandbox, open_sandbox
from tests.fakes.postgres import SKIP_REASON, find_binaries
from tests.sandbox.sandbox_client import PageUser, cards, text_of, until, weights

pytestmark = pytest.mark.slow

# Short leases: a takeover within about 3 s. The bakes leave the kill time mid-canary.
TTL_S, RENEW_S = 2.0, 0.5
BAKES = ("1s", "2s", "1s")


@pytest.fixture
async def replicated(tmp_path: Path) -> AsyncIterator[Sandbox]:
    if find_binaries() is None:
        pytest.skip(SKIP_REASON.replace("the PostgreSQL backend", "sandbox --replicas"))
    options = Options(
        directory=tmp_path / "sandbox",
        port=0,
        canary_bakes=BAKES,
        replicas=2,
        lease_ttl_s=TTL_S,
        lease_renew_s=RENEW_S,
    )
    async with open_sandbox(options) as running:
        yield running


async def replicas(operator: PageUser) -> dict[str, Any]:
    return dict(await operator.get("/api/replicas"))


async def owner_becomes(operator: PageUser, name: str, *, within_s: float) -> dict[str, Any]:
    """The newest run once the page shows `name` owning it (the lease table, polled)."""
    async with asyncio.timeout(within_s):
        while True:
            [run] = (await replicas(operator))["runs"]
            if run["owner"] == name:
                return dict(run)
            await asyncio.sleep(0.1)


async def test_a_killed_owner_s_canary_is_finished_by_the_other_replica_on_one_card(
    replicated: Sandbox, http: aiohttp.ClientSession
) -> None:
    sandbox = replicated
    requester = PageUser(http, sandbox.url, REQUESTER.id)
    first = await replicas(requester)
    assert [(r["name"], r["state"]) for r in first["replicas"]] == [
        ("replica-1", "live"),
        ("replica-2", "live"),
    ]

    await requester.type("/deploy production auth-svc")
    [card] = await until(sandbox, lambda: cards(sandbox.slack))
    for approver in APPROVERS:
        await PageUser(http, sandbox.url, approver.id).click(card, "deploy_approve")
    await until(sandbox, lambda: "stage 2/3: 50% of the traffic" in text_of(card))

    [run] = (await replicas(requester))["runs"]
    owner, generation = run["owner"], run["generation"]
    assert owner in ("replica-1", "replica-2")
    assert run["state"] == "running"
    assert await requester.post("/api/replicas/kill", {"replica": owner}) == {"ok": True}

    other = "replica-2" if owner == "replica-1" else "replica-1"
    killed = {r["name"]: r["state"] for r in (await replicas(requester))["replicas"]}
    assert killed == {owner: "killed", other: "live"}
    taken = await owner_becomes(requester, other, within_s=TTL_S + 2 * RENEW_S + 5)
    assert taken["generation"] == generation + 1
    # Start brings the killed one back (under its id) while the other finishes the run.
    started = asyncio.create_task(requester.post("/api/replicas/start", {"replica": owner}))
    await until(sandbox, lambda: "deployment successful" in text_of(card), within_s=30)
    assert await started == {"ok": True}

    after = await replicas(requester)
    states = {r["name"]: r["state"] for r in after["replicas"]}
    [finished] = after["runs"]
    assert states == {owner: "live", other: "live"}
    assert finished["state"] == "succeeded"
    assert (finished["owner"], finished["generation"]) == (other, generation + 1)
    assert cards(sandbox.slack) == [card]
    assert weights(sandbox, "production", "auth-svc") == {"blue": 0, "green": 100}
