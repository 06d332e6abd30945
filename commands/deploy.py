"""`/deploy`: parse the text, plan (current -> target per service), approvals, status and history.

No Slack types here: listeners in `bot/` call these and render what they return.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pipeline.config import Config, Environment
from pipeline.deploy import DeployEngine, RunningVersion
from pipeline.errors import (
    BadVersion,
    ChatOpsError,
    DeployConflict,
    Forbidden,
    NotFound,
    UsageError,
)
from pipeline.ports import Clock, Directory
from pipeline.runner import Runner
from store.deployments import Deployments
from store.models import (
    Decision,
    Deployment,
    DeploymentId,
    DeploymentState,
    Target,
    TargetStatus,
)

VERSION = re.compile(r"^v\d+\.\d+\.\d+(?:-[0-9A-Za-z][0-9A-Za-z.-]*)?$")
ROLLBACK_WINDOW_MINUTES = 60
HISTORY_LIMIT = 10


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class DeployRequest:
    environment: str
    services: tuple[str, ...]
    version: str | None


@dataclass(frozen=True)
class StatusRequest:
    deployment_id: str


@dataclass(frozen=True)
class HistoryRequest:
    environment: str | None


DeployCommand = Help | DeployRequest | StatusRequest | HistoryRequest


def usage(config: Config) -> str:
    """The `/deploy help` text; every subcommand is listed here and in docs/commands.md."""
    envs = ", ".join(f"`{e}`" for e in config.environments)
    svcs = ", ".join(f"`{s}`" for s in config.services)
    return (
        "*Usage*\n"
        "• `/deploy <environment> <service[,service...]|all> [version]`: plan a deploy and ask "
        "for approval. Without a version, an environment with `promote_from` takes the versions "
        "running there.\n"
        "• `/deploy status <deployment-id>`: the deployment record\n"
        "• `/deploy history [environment]`: the last 10 deployments\n"
        "• `/deploy help`: this message\n"
        f"Environments: {envs}\nServices: {svcs}\n"
        "Versions look like `v1.2.3` or `v2.0.0-rc1`."
    )


def parse_deploy(text: str, config: Config) -> DeployCommand:
    """Turn `/deploy` text into a typed request. Raises UsageError naming the valid choices."""
    words = text.split()
    if not words or words[0].lower() == "help":
        if len(words) > 1:
            raise UsageError(
                f"`help` takes nothing after it; got `{' '.join(words[1:])}`. "
                "Type `/deploy help` for the usage."
            )
        return Help()
    head = words[0].lower()
    if head == "status":
        if len(words) != 2:
            raise UsageError(
                "Say which deployment: `/deploy status <deployment-id>`. "
                "`/deploy history` lists recent ids."
            )
        return StatusRequest(words[1])
    if head == "history":
        if len(words) > 2:
            raise UsageError(
                "`/deploy history` takes at most an environment name: "
                f"{_choices(config.environments)}."
            )
        return HistoryRequest(config.environment(words[1]).name if len(words) == 2 else None)
    env = config.environment(head)
    if len(words) < 2:
        raise UsageError(
            f"Say which services to deploy to `{env.name}`: a name, a comma-separated list, "
            f"or `all`. Services: {_choices(config.services)}."
        )
    if len(words) > 3:
        raise UsageError(
            f"Unexpected extra words: `{' '.join(words[3:])}`. "
            "The form is `/deploy <environment> <services|all> [version]`."
        )
    services = _parse_services(words[1], config)
    version = words[2] if len(words) == 3 else None
    if version is not None and not VERSION.match(version):
        raise BadVersion(version)
    if version is None and env.promote_from is None:
        raise UsageError(
            f"`{env.name}` does not promote from another environment, so name a version: "
            f"`/deploy {env.name} {words[1]} v1.2.3`. Versions look like `v1.2.3` or "
            "`v2.0.0-rc1`."
        )
    return DeployRequest(env.name, services, version)


def _choices(names: Iterable[str]) -> str:
    return ", ".join(f"`{n}`" for n in sorted(names))


def _parse_services(word: str, config: Config) -> tuple[str, ...]:
    if word.lower() == "all":
        return tuple(config.services)
    names: list[str] = []
    for part in word.split(","):
        if not part:
            raise UsageError(
                f"`{word}` has an empty service name; separate names with one comma. "
                f"Services: {_choices(config.services)}, or `all`."
            )
        name = config.service(part).name
        if name not in names:
            names.append(name)
    return tuple(names)


@dataclass(frozen=True)
class DecisionOutcome:
    deployment: Deployment
    started: bool


class DeployCommands:
    """What `/deploy` and its buttons do, without Slack. Reads ECS through the engine."""

    def __init__(
        self,
        *,
        config: Config,
        deployments: Deployments,
        engine: DeployEngine,
        runner: Runner,
        directory: Directory,
        clock: Clock,
    ) -> None:
        self._config = config
        self._deployments = deployments
        self._engine = engine
        self._runner = runner
        self._directory = directory
        self._clock = clock

    async def is_member(self, user_id: str, ids: list[str]) -> bool:
        """True when `user_id` is listed in `ids` directly or through a user group."""
        if user_id in ids:
            return True
        for group in (i for i in ids if i.startswith("S")):
            if user_id in await self._directory.members_of(group):
                return True
        return False

    async def plan(self, request: DeployRequest, *, user_id: str, channel_id: str) -> Deployment:
        """Record a new deployment awaiting approval (or approved, when none is needed).

        Reads current (and, when promoting, source) versions from ECS. Raises Forbidden when the
        user may not deploy here, DeployConflict when a run already holds a service, and
        ChatOpsError when there is nothing to deploy. Records nothing when it raises.
        """
        env = self._config.environment(request.environment)
        if env.deployers and not await self.is_member(user_id, env.deployers):
            raise Forbidden(
                f"Only the deployers of `{env.name}` can request deploys there: "
                f"{_mentions(env.deployers)}. Ask one of them."
            )
        other = await self._deployments.running_for(env.name, request.services)
        if other is not None:
            raise DeployConflict(env.name, request.services, other)
        targets = await self._targets(env, request)
        if all(t.status is TargetStatus.SKIPPED for t in targets):
            raise ChatOpsError(
                f"Nothing to deploy: every service is already on its target version in "
                f"`{env.name}` ({', '.join(f'`{t.service}` {t.target_version}' for t in targets)})."
            )
        now = self._clock.now()
        run = Deployment(
            id=DeploymentId(f"{int(now.timestamp())}-{secrets.token_hex(3)}"),
            environment=env.name,
            requested_by=user_id,
            version=request.version,
            state=DeploymentState.AWAITING_APPROVAL,
            stage=None,
            required_approvals=env.required_approvals,
            channel_id=channel_id,
            message_ts=None,
            created_at=now,
            updated_at=now,
            approval_due_at=now + timedelta(seconds=env.approval_timeout_s)
            if env.required_approvals
            else None,
            started_at=None,
            finished_at=None,
            error=None,
            targets=tuple(targets),
        )
        await self._deployments.create(run)
        return run

    async def _targets(self, env: Environment, request: DeployRequest) -> list[Target]:
        services = [self._config.service(s) for s in request.services]
        source = self._config.environment(env.promote_from) if env.promote_from else None
        async with asyncio.TaskGroup() as tg:
            current = [tg.create_task(self._engine.running_version(env, s)) for s in services]
            promoted = (
                [tg.create_task(self._engine.running_version(source, s)) for s in services]
                if request.version is None and source is not None
                else []
            )
        targets = []
        for i, svc in enumerate(services):
            now_on: RunningVersion = current[i].result()
            if request.version is not None:
                target_version = request.version
            else:
                assert source is not None
                from_source = promoted[i].result().version
                if from_source is None or not VERSION.match(from_source):
                    raise ChatOpsError(
                        f"Cannot tell which version `{svc.name}` runs in `{source.name}` "
                        f"(its image is `{promoted[i].result().image}`). Name a version instead."
                    )
                target_version = from_source
            skipped = now_on.version == target_version
            targets.append(
                Target(
                    service=svc.name,
                    current_version=now_on.version,
                    target_version=target_version,
                    previous_task_def=now_on.task_definition,
                    status=TargetStatus.SKIPPED if skipped else TargetStatus.PENDING,
                    detail="already on this version" if skipped else None,
                )
            )
        return targets

    async def attach_card(self, deployment_id: str, *, channel_id: str, message_ts: str) -> None:
        await self._deployments.set_fields(
            deployment_id, at=self._clock.now(), channel_id=channel_id, message_ts=message_ts
        )

    async def cancel(self, deployment_id: str, *, reason: str) -> bool:
        """Cancel a run that has not started. Returns False when it had already moved on."""
        now = self._clock.now()
        return await self._deployments.transition(
            deployment_id,
            from_states=[DeploymentState.AWAITING_APPROVAL],
            to=DeploymentState.CANCELLED,
            at=now,
            finished_at=now,
            error=reason,
        )

    async def start_if_unapproved(self, deployment_id: str) -> Deployment:
        """Start a run needing no approvals. Raises DeployConflict if a run holds a service."""
        run = await self.get(deployment_id)
        if run.required_approvals == 0 and run.state is DeploymentState.AWAITING_APPROVAL:
            conflict = await self._deployments.start_unapproved(run.id, at=self._clock.now())
            if conflict is not None:
                await self.cancel(run.id, reason=f"deployment `{conflict}` holds a service")
                raise DeployConflict(
                    run.environment, [t.service for t in run.active_targets], conflict
                )
            self._runner.submit(run.id)
        return await self.get(deployment_id)

    async def decide(
        self, deployment_id: str, *, user_id: str, decision: Decision
    ) -> DecisionOutcome:
        """Record an Approve/Reject click. Raises Forbidden (nothing changes) when refused."""
        run = await self.get(deployment_id)
        env = self._config.environment(run.environment)
        if (
            run.state is DeploymentState.AWAITING_APPROVAL
            and run.approval_due_at is not None
            and run.approval_due_at <= self._clock.now()
        ):
            # The sweep only runs every so often; the window must hold between sweeps too.
            await self._expire(run.id)
            run = await self.get(deployment_id)
        if run.state is not DeploymentState.AWAITING_APPROVAL:
            raise Forbidden(
                f"Deployment `{run.id}` is already {_state_words(run.state)}; "
                "your click changed nothing."
            )
        if not await self.is_member(user_id, env.approvers):
            raise Forbidden(
                f"Only approvers of `{env.name}` can approve or reject: "
                f"{_mentions(env.approvers)}. Your click changed nothing."
            )
        if decision is Decision.APPROVE and user_id == run.requested_by:
            raise Forbidden(
                "You requested this deployment, so you cannot approve it. Ask another approver."
            )
        result = await self._deployments.record_decision(
            run.id, user_id=user_id, decision=decision, at=self._clock.now()
        )
        if result.conflict_with is not None:
            raise DeployConflict(
                run.environment, [t.service for t in run.active_targets], result.conflict_with
            )
        if not result.counted:
            if result.deployment.state is not DeploymentState.AWAITING_APPROVAL:
                raise Forbidden(
                    f"Deployment `{run.id}` is already "
                    f"{_state_words(result.deployment.state)}; your click changed nothing."
                )
            raise Forbidden("You already decided on this deployment; each approver counts once.")
        if result.started:
            self._runner.submit(run.id)
        return DecisionOutcome(result.deployment, result.started)

    async def expire_due(self) -> list[Deployment]:
        """Expire every request whose approval window has passed. Returns the expired runs."""
        now = self._clock.now()
        expired = []
        for run in await self._deployments.in_states([DeploymentState.AWAITING_APPROVAL]):
            if (
                run.approval_due_at is not None
                and run.approval_due_at <= now
                and await self._expire(run.id)
            ):
                expired.append(await self.get(run.id))
        return expired

    async def _expire(self, deployment_id: str) -> bool:
        now = self._clock.now()
        return await self._deployments.transition(
            deployment_id,
            from_states=[DeploymentState.AWAITING_APPROVAL],
            to=DeploymentState.EXPIRED,
            at=now,
            finished_at=now,
            error="no decision within the approval window",
        )

    async def get(self, deployment_id: str) -> Deployment:
        run = await self._deployments.get(deployment_id)
        if run is None:
            raise NotFound(
                f"No deployment has the id `{deployment_id}`. `/deploy history` lists recent ones."
            )
        return run

    async def history(self, environment: str | None) -> list[Deployment]:
        return await self._deployments.list_recent(environment=environment, limit=HISTORY_LIMIT)


_STATUS_WORDS = {
    DeploymentState.AWAITING_APPROVAL: "awaiting_approval",
    DeploymentState.APPROVED: "approved",
    DeploymentState.RUNNING: "in_progress",
    DeploymentState.ROLLING_BACK: "rolling_back",
    DeploymentState.SUCCEEDED: "success",
    DeploymentState.ROLLED_BACK: "failed_rolled_back",
    DeploymentState.ROLLBACK_FAILED: "failed_rollback_failed",
    DeploymentState.REJECTED: "rejected",
    DeploymentState.EXPIRED: "expired",
    DeploymentState.CANCELLED: "cancelled",
}

_HEALTH_WORDS = {
    TargetStatus.HEALTHY: "healthy",
    TargetStatus.FAILED: "unhealthy",
    TargetStatus.ROLLED_BACK: "rolled_back",
    TargetStatus.ROLLBACK_FAILED: "rollback_failed",
    TargetStatus.SKIPPED: "skipped",
}


def deployment_record(run: Deployment) -> dict[str, Any]:
    """The deployment record of the runbook (seed 003), built from the store."""
    active = run.active_targets
    versions = sorted({t.target_version for t in active})
    succeeded = run.state is DeploymentState.SUCCEEDED
    rollback_available = succeeded and all(t.previous_task_def for t in active)
    deadline = (
        run.finished_at + timedelta(minutes=ROLLBACK_WINDOW_MINUTES)
        if rollback_available and run.finished_at
        else None
    )
    return {
        "timestamp": _iso(run.finished_at or run.updated_at),
        "deployment_id": run.id,
        "version": versions[0] if len(versions) == 1 else ", ".join(versions),
        "environment": run.environment,
        "status": _STATUS_WORDS[run.state],
        "triggered_by": run.requested_by,
        "approved_by": list(run.approved_by),
        "services_deployed": [t.service for t in active],
        "versions": {
            t.service: {"from": t.current_version, "to": t.target_version} for t in run.targets
        },
        "health_checks": {
            t.service.replace("-", "_"): _HEALTH_WORDS.get(t.status, "pending") for t in run.targets
        },
        "rollback_available": rollback_available,
        "rollback_window_minutes": ROLLBACK_WINDOW_MINUTES,
        "rollback_deadline": _iso(deadline),
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "error": run.error,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _state_words(state: DeploymentState) -> str:
    return state.value.replace("_", " ")


def _mentions(ids: list[str]) -> str:
    return ", ".join(f"<!subteam^{i}>" if i.startswith("S") else f"<@{i}>" for i in ids)
