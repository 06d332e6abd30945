"""The App Home with replicas: a person who opened it on one replica gets its updates from the
changes another replica makes, once that replica's sweep has read who opened it."""

from __future__ import annotations

from pipeline.aws import BotoEcs
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.slack_api import FakeSlack
from tests.replicas.rig import MakeReplica

VIEWER = "UDANA"


async def test_a_home_opened_on_one_replica_follows_the_changes_another_makes(
    make_replica: MakeReplica, world: EcsWorld, slack: FakeSlack
) -> None:
    a = await make_replica("replica-a", BotoEcs())
    b = await make_replica("replica-b", BotoEcs())
    assert (await a.driver.send.app_home_opened(VIEWER)).status == 200
    await a.driver.settle()

    await b.runtime.sweep()
    await b.driver.command("lock production release train", user="UAPPROVER1")
    await b.driver.settle()

    home = slack.workspace.home_views[VIEWER].view
    assert "Locked by <@UAPPROVER1>" in str(home["blocks"])
