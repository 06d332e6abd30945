"""A new request record of any kind (deploy, break-glass deploy, rollback, restore), made in
one place: what it awaits (approvals, or its requester's answer) and until when."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from pipeline.kernel.config import Environment
from store.deploy.models import (
    Deployment,
    DeploymentId,
    DeploymentState,
    Restore,
    RunKind,
    SourceSetback,
    Target,
    UndoneMigrations,
)


def new_deployment_id(now: datetime) -> DeploymentId:
    return DeploymentId(f"{int(now.timestamp())}-{secrets.token_hex(3)}")


def new_request(
    env: Environment,
    *,
    kind: RunKind,
    requested_by: str,
    channel_id: str,
    now: datetime,
    run_id: DeploymentId | None = None,
    approvals: int | None = None,
    confirm_within_s: float | None = None,
    version: str | None = None,
    targets: Sequence[Target] = (),
    break_glass: str | None = None,
    skip_staging: str | None = None,
    reverts: DeploymentId | None = None,
    reason: str | None = None,
    undoes_migrations: tuple[UndoneMigrations, ...] = (),
    restore: Restore | None = None,
    source_setbacks: tuple[SourceSetback, ...] = (),
) -> Deployment:
    """A run of `kind` in `env` awaiting approval, not yet stored (`Deployments.create`).

    It needs `approvals` (by default the environment's), due within the environment's approval
    timeout. One that needs none is due only when its requester is asked first: within
    `confirm_within_s` (a rollback's question); otherwise nothing is due.
    """
    required = env.required_approvals if approvals is None else approvals
    due: datetime | None = None
    if required:
        due = now + timedelta(seconds=env.approval_timeout_s)
    elif confirm_within_s is not None:
        due = now + timedelta(seconds=confirm_within_s)
    return Deployment(
        id=run_id or new_deployment_id(now),
        environment=env.name,
        requested_by=requested_by,
        version=version,
        state=DeploymentState.AWAITING_APPROVAL,
        stage=None,
        required_approvals=required,
        channel_id=channel_id,
        message_ts=None,
        created_at=now,
        updated_at=now,
        approval_due_at=due,
        started_at=None,
        finished_at=None,
        error=None,
        targets=tuple(targets),
        kind=kind,
        break_glass=break_glass,
        skip_staging=skip_staging,
        reverts=reverts,
        reason=reason,
        undoes_migrations=undoes_migrations,
        restore=restore,
        source_setbacks=source_setbacks,
    )
