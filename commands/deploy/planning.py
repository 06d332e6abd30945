"""Planning a deploy: who may ask, what each service goes from and to (a named version, or the
one the environment it is promoted from runs), the pre-flight checks, and the record awaiting
approval; with `--dry-run`, only what it would do and each check's result.
"""

from __future__ import annotations

import asyncio

from commands.access import Access
from commands.deploy.parse import DeployRequest, version_problem
from commands.deploy.replies import DryRun
from commands.runs.records import new_request
from pipeline.fleet import Fleet, RunningVersion
from pipeline.kernel.config import Config, Environment
from pipeline.kernel.errors import ChatOpsError, DeployConflict, Forbidden
from pipeline.kernel.ports import Clock
from pipeline.kernel.text import People
from pipeline.preflight import Check, Planned, Preflight, blocking_failures
from pipeline.setbacks import CHECK as SOURCE_HISTORY
from pipeline.setbacks import recent_setbacks, setback_checks
from store.deploy.models import Deployment, DeploymentId, RunKind, Target, TargetStatus
from store.deploy.repository import Deployments


class DeployPlanner:
    """Plans deploys: reads ECS and ECR through the fleet, runs the pre-flight checks, and
    records what is to be approved."""

    def __init__(
        self,
        *,
        config: Config,
        deployments: Deployments,
        fleet: Fleet,
        access: Access,
        clock: Clock,
        preflight: Preflight,
    ) -> None:
        self._config = config
        self._deployments = deployments
        self._fleet = fleet
        self._access = access
        self._clock = clock
        self._preflight = preflight

    async def plan(
        self,
        request: DeployRequest,
        *,
        user_id: str,
        channel_id: str,
        deployment_id: DeploymentId | None = None,
    ) -> Deployment | DryRun:
        """Record a new deployment awaiting approval (with `deployment_id`, when given), after
        the pre-flight checks (a dry run: only the plan and every check's result, nothing
        recorded).

        Reads current (and, when promoting, source) versions from ECS, images from ECR, the
        source's health. Raises Forbidden when the user may not deploy here (deployers, a lock,
        a window or a freeze), DeployConflict when a run already holds a service, and
        ChatOpsError when there is nothing to deploy or a check fails. Records nothing then.
        """
        env = self._config.environment(request.environment)
        await self._refuse_outsiders_and_overlaps(env, request, user_id=user_id)
        targets, images, source_health = await self._read(env, request)
        if all(t.status is TargetStatus.SKIPPED for t in targets):
            raise ChatOpsError(
                "Nothing to deploy: every service is already on its target version in "
                "`{env}` ({versions}).",
                env=env.name,
                versions=", ".join(f"`{t.service}` {t.target_version}" for t in targets),
            )
        now = self._clock.now()
        active = [t for t in targets if t.status is not TargetStatus.SKIPPED]
        checks = await self._preflight.run(
            env,
            user_id=user_id,
            planned=[Planned(t.service, t.target_version, images[t.service]) for t in active],
            now=now,
            break_glass=request.break_glass,
            skip_staging=request.skip_staging,
            source_health=source_health,
            tell_war_rooms=not request.dry_run,
        )
        setbacks = await recent_setbacks(self._deployments, env, active, now=now)
        checks += setback_checks(env, setbacks, hotfix=request.skip_staging is not None)
        approvals = env.required_approvals + (1 if request.break_glass else 0)
        if request.dry_run:
            return DryRun(env.name, tuple(targets), tuple(checks), approvals, request)
        _refuse_on(blocking_failures(checks), env)
        if request.break_glass and len(env.approvers) == 0:
            raise Forbidden(
                "A break-glass deploy needs one approval more than usual, and `{env}` has no "
                "approvers; add some under `environments.{env}.approvers`. Nothing was planned.",
                env=env.name,
            )
        digests = {c.service: c.digest for c in checks if c.service and c.digest}
        targets = [t.model_copy(update={"image_digest": digests.get(t.service)}) for t in targets]
        run = new_request(
            env,
            kind=RunKind.DEPLOY,
            requested_by=user_id,
            channel_id=channel_id,
            now=now,
            run_id=deployment_id,
            approvals=approvals,
            version=request.version,
            targets=targets,
            break_glass=request.break_glass,
            skip_staging=request.skip_staging,
            source_setbacks=tuple(setbacks),
        )
        await self._deployments.create(run)
        return run

    async def _refuse_outsiders_and_overlaps(
        self, env: Environment, request: DeployRequest, *, user_id: str
    ) -> None:
        """Raise Forbidden when the user may not ask for deploys here, DeployConflict when a
        run already holds one of the services."""
        if env.deployers and not await self._access.is_member(user_id, env.deployers):
            raise Forbidden(
                "Only the deployers of `{env}` can request deploys there: {who}. Ask one of them.",
                env=env.name,
                who=People.of(env.deployers),
            )
        other = await self._deployments.running_for(env.name, request.services)
        if other is not None:
            raise DeployConflict(env.name, request.services, other)

    async def _read(
        self, env: Environment, request: DeployRequest
    ) -> tuple[list[Target], dict[str, str], list[Check]]:
        """The targets and images the fleet gives, and the source's health, probed while ECS
        is read (it needs nothing the fleet says). The first refusal of either is raised."""
        try:
            async with asyncio.TaskGroup() as tg:
                source_health = tg.create_task(
                    self._preflight.source_health(
                        env, request.services, skip_staging=request.skip_staging
                    )
                )
                fleet = tg.create_task(self._read_fleet(env, request))
        except ExceptionGroup as group:
            refusal = _first_chatops_error(group)
            if refusal is None:
                raise
            raise refusal from refusal.__cause__
        targets, images = fleet.result()
        return targets, images, source_health.result()

    async def _read_fleet(
        self, env: Environment, request: DeployRequest
    ) -> tuple[list[Target], dict[str, str]]:
        """Check each canary's setup, then read what each service runs and is to run."""
        async with asyncio.TaskGroup() as tg:
            for name in request.services:
                tg.create_task(self._fleet.check_canary(env, self._config.service(name)))
        return await self._targets(env, request)

    async def _targets(
        self, env: Environment, request: DeployRequest
    ) -> tuple[list[Target], dict[str, str]]:
        services = [self._config.service(s) for s in request.services]
        source = self._config.environment(env.promote_from) if env.promote_from else None
        try:
            async with asyncio.TaskGroup() as tg:
                current = [tg.create_task(self._fleet.running_version(env, s)) for s in services]
                promoted = (
                    [tg.create_task(self._fleet.running_version(source, s)) for s in services]
                    if request.version is None and source is not None
                    else []
                )
        except ExceptionGroup as group:
            # Say what AWS said (a refusal, a missing service), not "something went wrong".
            refusal = _first_chatops_error(group)
            if refusal is None:
                raise
            raise refusal from refusal.__cause__
        targets = []
        for i, svc in enumerate(services):
            now_on: RunningVersion = current[i].result()
            if request.version is not None:
                target_version = request.version
            else:
                assert source is not None
                from_source = promoted[i].result().version
                if from_source is None or version_problem(from_source) is not None:
                    raise ChatOpsError(
                        "Cannot tell which version `{service}` runs in `{source}` (its image is "
                        "`{image}`). Name a version instead.",
                        service=svc.name,
                        source=source.name,
                        image=promoted[i].result().image,
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
        return targets, {svc.name: current[i].result().image for i, svc in enumerate(services)}


def _refuse_on(failures: list[Check], env: Environment) -> None:
    """Raise the first blocking failure as the person should read it."""
    if not failures:
        return
    first = failures[0]
    environment = env.name
    if first.name == SOURCE_HISTORY:
        raise ChatOpsError(
            first.detail.after(
                f"`{environment}` refuses a version that failed or was rolled back in "
                f"`{env.promote_from}` in the last 24 hours:"
            ).then(
                "Nothing was planned. Deploy it to `{source}` again first, name another "
                'version, or add `--skip-staging "<reason>"` for a hotfix (the card then '
                "warns the approvers).",
                source=env.promote_from or "",
            )
        )
    if first.name == "lock":
        raise Forbidden(
            first.detail.then(
                "Nothing was planned; ask the holder to `/deploy unlock {env}`, or wait.",
                env=environment,
            )
        )
    if first.name in ("window", "freeze"):
        raise Forbidden(
            first.detail.then(
                'Nothing was planned. To deploy anyway, add `--break-glass "<reason>"`: it '
                "needs one approval more than usual and everyone is told."
            )
        )
    if first.name == "incident":
        raise Forbidden(
            first.detail.then(
                "Nothing was planned; `/rollback` stays allowed. To deploy anyway, add "
                '`--break-glass "<reason>"`: it needs one approval more than usual, and the war '
                "room is told."
            )
        )
    service = f" for `{first.service}`" if first.service else ""
    raise ChatOpsError(
        first.detail.after(f"Pre-flight check `{first.name}` failed{service}:").then(
            "Nothing was planned."
        )
    )


def _first_chatops_error(group: BaseExceptionGroup[BaseException]) -> ChatOpsError | None:
    for exc in group.exceptions:
        if isinstance(exc, ChatOpsError):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _first_chatops_error(exc)
            if found is not None:
                return found
    return None
