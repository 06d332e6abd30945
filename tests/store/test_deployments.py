"""The deployments repository on a real SQLite file: CAS transitions, decisions, canary stages,
migrations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from store.db import Store
from store.deploy.models import (
    Decision,
    Deployment,
    DeploymentId,
    DeploymentState,
    StageStatus,
    Target,
    TargetStatus,
)
from store.deploy.repository import Deployments
from store.deploy.stages import RolloutStages
from store.migrations import MIGRATIONS, apply_migrations

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def make_run(
    run_id: str,
    *,
    environment: str = "production",
    state: DeploymentState = DeploymentState.AWAITING_APPROVAL,
    services: tuple[str, ...] = ("api-gateway",),
    skipped: tuple[str, ...] = (),
    required_approvals: int = 2,
) -> Deployment:
    return Deployment(
        id=DeploymentId(run_id),
        environment=environment,
        requested_by="UDEV",
        version=None,
        state=state,
        stage=None,
        required_approvals=required_approvals,
        channel_id="CDEPLOYS",
        message_ts=None,
        created_at=T0,
        updated_at=T0,
        approval_due_at=T0 + timedelta(hours=2),
        started_at=None,
        finished_at=None,
        error=None,
        targets=tuple(
            Target(
                service=s,
                current_version="v1.2.0",
                target_version="v1.3.0",
                status=TargetStatus.SKIPPED if s in skipped else TargetStatus.PENDING,
            )
            for s in services
        ),
    )


@pytest.fixture
async def store(database: Path | str) -> AsyncIterator[Store]:
    opened = await Store.open(database)
    yield opened
    await opened.close()


@pytest.fixture
def deployments(store: Store) -> Deployments:
    return Deployments(store)


async def test_a_transition_changes_the_state_once_under_concurrent_attempts(
    deployments: Deployments,
) -> None:
    await deployments.create(make_run("r1", state=DeploymentState.APPROVED))

    results = await asyncio.gather(
        *(
            deployments.transition(
                "r1",
                from_states=[DeploymentState.APPROVED],
                to=DeploymentState.RUNNING,
                at=T0 + timedelta(seconds=i),
                stage=f"attempt-{i}",
            )
            for i in range(10)
        )
    )

    assert results.count(True) == 1
    run = await deployments.get("r1")
    assert run is not None
    assert run.state is DeploymentState.RUNNING
    assert run.stage == f"attempt-{results.index(True)}"


async def test_a_transition_from_the_wrong_state_changes_nothing(
    deployments: Deployments,
) -> None:
    await deployments.create(make_run("r1"))

    moved = await deployments.transition(
        "r1", from_states=[DeploymentState.RUNNING], to=DeploymentState.SUCCEEDED, at=T0
    )

    assert moved is False
    run = await deployments.get("r1")
    assert run is not None
    assert run.state is DeploymentState.AWAITING_APPROVAL
    assert run.updated_at == T0


async def test_recording_the_same_decision_twice_counts_it_once(
    deployments: Deployments,
) -> None:
    await deployments.create(make_run("r1"))

    first = await deployments.record_decision(
        "r1", user_id="UAPPROVER1", decision=Decision.APPROVE, at=T0
    )
    second = await deployments.record_decision(
        "r1", user_id="UAPPROVER1", decision=Decision.APPROVE, at=T0 + timedelta(seconds=1)
    )

    assert (first.counted, second.counted) == (True, False)
    assert second.deployment.approved_by == ("UAPPROVER1",)
    assert second.deployment.state is DeploymentState.AWAITING_APPROVAL


async def test_concurrent_clicks_by_one_approver_are_counted_once(
    deployments: Deployments,
) -> None:
    await deployments.create(make_run("r1"))

    results = await asyncio.gather(
        *(
            deployments.record_decision(
                "r1", user_id="UAPPROVER1", decision=Decision.APPROVE, at=T0
            )
            for _ in range(5)
        )
    )

    assert [r.counted for r in results].count(True) == 1
    run = await deployments.get("r1")
    assert run is not None
    assert run.approved_by == ("UAPPROVER1",)


async def test_the_last_distinct_approval_moves_the_run_to_approved(
    deployments: Deployments,
) -> None:
    await deployments.create(make_run("r1"))
    await deployments.record_decision("r1", user_id="UA", decision=Decision.APPROVE, at=T0)

    result = await deployments.record_decision("r1", user_id="UB", decision=Decision.APPROVE, at=T0)

    assert result.started is True
    assert result.deployment.state is DeploymentState.APPROVED


async def test_a_reject_ends_the_run(deployments: Deployments) -> None:
    await deployments.create(make_run("r1"))

    result = await deployments.record_decision("r1", user_id="UA", decision=Decision.REJECT, at=T0)

    assert result.deployment.state is DeploymentState.REJECTED
    assert result.deployment.rejected_by == "UA"
    assert result.deployment.finished_at == T0


async def test_a_decision_on_a_finished_run_is_not_counted(deployments: Deployments) -> None:
    await deployments.create(make_run("r1", state=DeploymentState.EXPIRED))

    result = await deployments.record_decision("r1", user_id="UA", decision=Decision.APPROVE, at=T0)

    assert result.counted is False
    assert result.deployment.approvals == ()


async def test_the_last_approval_is_held_back_while_another_run_holds_a_service(
    deployments: Deployments,
) -> None:
    await deployments.create(make_run("busy", state=DeploymentState.RUNNING))
    await deployments.create(make_run("r1", required_approvals=1))

    result = await deployments.record_decision("r1", user_id="UA", decision=Decision.APPROVE, at=T0)

    assert result.conflict_with == "busy"
    assert result.counted is False
    assert result.deployment.state is DeploymentState.AWAITING_APPROVAL


@pytest.mark.parametrize(
    ("other", "expected"),
    [
        (make_run("busy", state=DeploymentState.RUNNING), "busy"),
        (make_run("busy", state=DeploymentState.APPROVED), "busy"),
        (make_run("busy", state=DeploymentState.ROLLING_BACK), "busy"),
        (make_run("busy", state=DeploymentState.AWAITING_APPROVAL), None),
        (make_run("busy", state=DeploymentState.SUCCEEDED), None),
        (make_run("busy", state=DeploymentState.RUNNING, environment="staging"), None),
        (make_run("busy", state=DeploymentState.RUNNING, services=("auth-svc",)), None),
        (
            make_run(
                "busy",
                state=DeploymentState.RUNNING,
                services=("api-gateway", "auth-svc"),
                skipped=("api-gateway",),
            ),
            None,
        ),
    ],
)
async def test_running_for_finds_only_in_flight_runs_holding_the_service_in_that_environment(
    deployments: Deployments, other: Deployment, expected: str | None
) -> None:
    await deployments.create(other)

    assert await deployments.running_for("production", ["api-gateway"]) == expected


async def _baking(deployments: Deployments, stages: RolloutStages) -> None:
    await deployments.create(make_run("r1", state=DeploymentState.RUNNING))
    await stages.start("r1", position=0, weight=5, bake_s=300, at=T0)


async def test_an_abort_rolls_the_run_back_and_ends_its_stage_naming_who_once(
    deployments: Deployments, store: Store
) -> None:
    stages = RolloutStages(store)
    await _baking(deployments, stages)

    first = await stages.abort("r1", position=0, by="UONCALL", at=T0, error="aborted")
    second = await stages.abort("r1", position=0, by="UOTHER", at=T0, error="again")

    run = await deployments.get("r1")
    assert run is not None
    assert (first, second) == (True, False)
    assert (run.state, run.error) == (DeploymentState.ROLLING_BACK, "aborted")
    assert (run.stages[0].status, run.stages[0].aborted_by) == (StageStatus.ABORTED, "UONCALL")


async def test_a_stage_of_a_run_no_longer_running_is_neither_promoted_nor_held(
    deployments: Deployments, store: Store
) -> None:
    """Issue 16: a Promote landing after an Abort moved the run on, before its stage ended,
    was taken."""
    stages = RolloutStages(store)
    await _baking(deployments, stages)
    await deployments.transition(
        "r1", from_states=[DeploymentState.RUNNING], to=DeploymentState.ROLLING_BACK, at=T0
    )

    promoted = await stages.promote("r1", position=0, by="UAPPROVER1")
    held = await stages.steer(
        "r1",
        position=0,
        from_status=StageStatus.BAKING,
        to_status=StageStatus.HELD,
        held_by="UAPPROVER1",
        held_at=T0,
    )

    run = await deployments.get("r1")
    assert run is not None
    assert (promoted, held) == (False, False)
    assert (run.stages[0].status, run.stages[0].promoted_by) == (StageStatus.BAKING, None)


def test_migrations_apply_once(tmp_path: Path) -> None:
    db = sqlite_utils.Database(tmp_path / "m.db")

    first = apply_migrations(db)
    second = apply_migrations(db)

    assert first == [version for version, _name, _fn in MIGRATIONS]
    assert second == []
    assert db.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(MIGRATIONS)


async def test_reopening_the_database_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "chatops.db"
    first = await Store.open(path)
    await Deployments(first).create(make_run("r1"))
    await first.close()

    second = await Store.open(path)
    try:
        run = await Deployments(second).get("r1")
    finally:
        await second.close()

    assert run is not None
    assert run.targets[0].service == "api-gateway"
