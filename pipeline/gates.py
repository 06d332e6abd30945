"""The stages around a rollout (seeds 003 and 004): the wait after the last approval, the
pre-flight checks again just before the run, a verified database backup before migrations,
the migrations as one-off tasks of the new revision, the records kept in S3, and a database
restore to a new instance.

Each stage records its start (the run's `stage`) before acting and its result after, and is
safe to run again after a restart: the snapshot and the migration task are found by name.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import NoReturn

from pipeline.kernel.config import Environment, Service, format_duration
from pipeline.kernel.errors import ChatOpsError, NotFound, StageFailed
from pipeline.kernel.infra import RecordStore, Snapshots, Tasks
from pipeline.kernel.text import counted
from pipeline.preflight import Planned, Preflight, blocking_failures
from pipeline.records import deployment_record, failure_report, rollback_instructions
from pipeline.steps import Steps, rev
from pipeline.tasks import first_done
from store.deploy.models import Deployment, DeploymentState, MigrationRun, Target

log = logging.getLogger(__name__)

# While a run waits, its card counts down at this pace.
WAIT_REDRAW_S = 30.0
# A record that S3 refused is tried again after these pauses, then given up (never blocking).
RECORD_RETRIES_S = (2.0, 10.0)
GATE_STAGES = ("preflight", "backup", "migrate")


def snapshot_name(run: Deployment) -> str:
    """The backup's name: after the deployment id (RDS wants a letter first)."""
    return f"chatops-{run.id}"


class RunGates:
    def __init__(
        self,
        steps: Steps,
        *,
        preflight: Preflight,
        snapshots: Snapshots,
        tasks: Tasks,
        records: RecordStore,
    ) -> None:
        self._steps = steps
        self._preflight = preflight
        self._snapshots = snapshots
        self._tasks = tasks
        self._records = records

    # -- the wait ------------------------------------------------------------------------

    async def wait(self, run: Deployment, stop: asyncio.Event) -> bool:
        """Sleep until the run's `wait_until`, redrawing the countdown; False when stopped."""
        clock = self._steps.clock
        assert run.wait_until is not None
        while not stop.is_set():
            left = (run.wait_until - clock.now()).total_seconds()
            if left <= 0:
                return True
            await self._steps.redraw(await self._steps.require(run.id))
            await first_done(clock.sleep(min(left, WAIT_REDRAW_S)), stop.wait())
        return False

    # -- before the rollout --------------------------------------------------------------

    async def before_rollout(self, run: Deployment, env: Environment) -> None:
        """Pre-flight, backup, migrations, from the stage the run was in. Raises ChatOpsError
        (nothing changed in the services yet) when one fails."""
        stage = run.stage if run.stage in GATE_STAGES else "preflight"
        for name in GATE_STAGES[GATE_STAGES.index(stage) :]:
            await self._steps.deployments.set_fields(run.id, at=self._steps.clock.now(), stage=name)
            run = await self._steps.require(run.id)
            if name == "preflight":
                await self._preflight_again(run, env)
            elif name == "backup":
                await self._backup(run, env)
            else:
                await self._migrate(run, env)
        await self._steps.deployments.set_fields(
            run.id, at=self._steps.clock.now(), stage="rollout"
        )

    async def _preflight_again(self, run: Deployment, env: Environment) -> None:
        if run.is_rollback:
            return  # going back is the safe direction: no gate holds it up
        steps = self._steps
        planned = []
        for t in run.active_targets:
            svc = steps.config.service(t.service)
            image = svc.image or (await steps.running_version(env, svc)).image
            planned.append(Planned(t.service, t.target_version, image=image))
        checks = await self._preflight.run(
            env,
            user_id=run.requested_by,
            planned=planned,
            now=steps.clock.now(),
            break_glass=run.break_glass,
            skip_staging=run.skip_staging,
        )
        failed = blocking_failures(checks)
        for check in checks:
            if check.digest and check.service:
                await steps.deployments.update_target(
                    run.id, check.service, image_digest=check.digest
                )
        if failed:
            first = failed[0]
            where = f" for `{first.service}`" if first.service else ""
            await self._halt(
                run,
                StageFailed(
                    "preflight",
                    first.detail.after(f"Pre-flight check `{first.name}` failed{where}:"),
                ),
            )
        await steps.event(run, "preflight", "passed", detail=counted(len(checks), "check"))

    async def _halt(
        self, run: Deployment, failure: StageFailed, *, service: str | None = None
    ) -> NoReturn:
        """Record a gate's failure in the timeline (the failure report names the stage from
        it), then stop the run."""
        await self._steps.event(run, failure.stage, "failed", service=service, detail=failure.line)
        raise failure

    def _migrating(self, run: Deployment) -> list[tuple[Target, Service]]:
        out = []
        for t in run.active_targets:
            svc = self._steps.config.service(t.service)
            if svc.migration is not None and not run.is_rollback:
                out.append((t, svc))
        return out

    async def _backup(self, run: Deployment, env: Environment) -> None:
        if env.database is None or not self._migrating(run) or run.backup_id:
            return
        steps = self._steps
        name = snapshot_name(run)
        await steps.event(
            run, "backup", "started", detail=f"snapshot `{name}` of {env.database.instance}"
        )
        snapshot = await self._snapshots.create(
            region=env.region, instance=env.database.instance, snapshot=name
        )
        deadline = steps.clock.now().timestamp() + env.database.snapshot_timeout_s
        while snapshot.status != "available":
            if snapshot.status in ("failed", "incompatible-restore", "deleted"):
                await self._halt(
                    run, StageFailed("backup", f"The snapshot `{name}` is {snapshot.status}.")
                )
            if steps.clock.now().timestamp() >= deadline:
                await self._halt(
                    run,
                    StageFailed(
                        "backup",
                        f"The snapshot `{name}` was not available within "
                        f"{format_duration(env.database.snapshot_timeout_s)} (it is "
                        f"{snapshot.status}).",
                    ),
                )
            await steps.clock.sleep(env.rollout.poll_interval_s)
            snapshot = await self._snapshots.describe(region=env.region, snapshot=name)
        await steps.deployments.set_fields(run.id, at=steps.clock.now(), backup_id=name)
        await steps.event(run, "backup", "done", detail=f"snapshot `{name}` is available")

    async def _migrate(self, run: Deployment, env: Environment) -> None:
        steps = self._steps
        done = {m.service: m for m in run.migrations}
        results = list(run.migrations)
        for i, (target, svc) in enumerate(self._migrating(run)):
            migration = svc.migration
            assert migration is not None
            assert env.network is not None
            if svc.name in done and done[svc.name].exit_code == 0:
                continue
            current = await steps.running_version(env, svc)
            target = await steps.register_target(
                run, env, svc, target, based_on=current.task_definition
            )
            assert target.new_task_def is not None
            container = migration.container or svc.container
            await self._check_container(run, env, svc, target.new_task_def, container)
            task = await self._tasks.run(
                region=env.region,
                cluster=env.cluster,
                task_definition=target.new_task_def,
                container=container,
                command=migration.command,
                subnets=env.network.subnets,
                security_groups=env.network.security_groups,
                assign_public_ip=env.network.assign_public_ip,
                launch_type=env.network.launch_type,
                started_by=f"mig-{run.id}-{i}"[:36],
            )
            await steps.event(
                run, "migrate", "started", service=svc.name, detail=" ".join(migration.command)
            )
            deadline = steps.clock.now().timestamp() + migration.timeout_s
            status = await self._tasks.status(
                region=env.region, cluster=env.cluster, task=task, container=container
            )
            while not status.stopped:
                if steps.clock.now().timestamp() >= deadline:
                    await self._halt(
                        run,
                        StageFailed(
                            "migrate",
                            f"The migration of `{svc.name}` did not finish within "
                            f"{format_duration(migration.timeout_s)}{_kept(run)}.",
                        ),
                        service=svc.name,
                    )
                await steps.clock.sleep(env.rollout.poll_interval_s)
                status = await self._tasks.status(
                    region=env.region, cluster=env.cluster, task=task, container=container
                )
            result = MigrationRun(
                service=svc.name,
                task=task,
                exit_code=status.exit_code,
                stopped_reason=status.stopped_reason,
                log_url=status.log_url,
            )
            results = [r for r in results if r.service != svc.name] + [result]
            await steps.deployments.set_fields(run.id, at=steps.clock.now(), migrations=results)
            if status.exit_code != 0:
                why = (
                    f"exited {status.exit_code}"
                    if status.exit_code is not None
                    else f"stopped: {status.stopped_reason or 'no exit code'}"
                )
                logs = f" Logs: {status.log_url}" if status.log_url else ""
                await steps.event(run, "migrate", "failed", service=svc.name, detail=why)
                raise StageFailed(
                    "migrate",
                    f"The migration of `{svc.name}` {why}, so no service was changed"
                    f"{_kept(run)}.{logs}",
                )
            await steps.event(run, "migrate", "done", service=svc.name, detail="exit code 0")

    async def _check_container(
        self, run: Deployment, env: Environment, svc: Service, task_definition: str, container: str
    ) -> None:
        """ECS would start the task anyway and the override would name no container: refuse
        first, naming the key to fix."""
        try:
            await self._steps.ecs.image_of(
                region=env.region, task_definition=task_definition, container=container
            )
        except NotFound:
            own = svc.migration is not None and svc.migration.container is not None
            key = "migration.container" if own else "container"
            await self._halt(
                run,
                StageFailed(
                    "migrate",
                    f"The migration of `{svc.name}` cannot run: its task definition "
                    f"{rev(task_definition)} has no container `{container}`. Fix "
                    f"`services.{svc.name}.{key}` in chatops.toml. No service was changed"
                    f"{_kept(run)}.",
                ),
                service=svc.name,
            )

    # -- after the run -------------------------------------------------------------------

    async def write_records(self, run: Deployment, env: Environment) -> None:
        """Seed 003's records to the environment's bucket, retried, never raising."""
        if env.records is None or not run.state.finished:
            return
        steps = self._steps
        prefix = env.records.prefix
        events = await steps.deployments.events(run.id)
        backup_at = next((e.at for e in events if e.stage == "backup" and e.status == "done"), None)
        documents = {
            f"{prefix}deployment-record-{run.id}.json": deployment_record(
                run,
                now=steps.clock.now(),
                window_minutes=env.rollback_window_s / 60,
                backup_at=backup_at,
            )
        }
        if run.state in (DeploymentState.ROLLED_BACK, DeploymentState.ROLLBACK_FAILED):
            # The first failure in the timeline is where the run broke; later ones are the
            # run-level summary and the rollback's own.
            failures = [
                e for e in events if e.status == "failed" and e.stage not in ("rollback", "records")
            ]
            failed_services = [e.service for e in failures if e.service]
            documents[f"{prefix}deployment-failure-report-{run.id}.json"] = failure_report(
                run,
                failed_stage=failures[0].stage if failures else "rollout",
                failed_services=list(dict.fromkeys(failed_services)),
            )
        if run.state is not DeploymentState.CANCELLED and run.active_targets:
            documents[f"{prefix}rollback-instructions-{run.id}.json"] = rollback_instructions(
                run, env=env, services=steps.config.services
            )
        written = list(run.records_written)
        for key, document in documents.items():
            if key in written:
                continue
            if await self._put(run, env, key, document):
                written.append(key)
        if written != list(run.records_written):
            await steps.deployments.set_fields(
                run.id, at=steps.clock.now(), records_written=written
            )

    async def _put(
        self, run: Deployment, env: Environment, key: str, document: dict[str, object]
    ) -> bool:
        assert env.records is not None
        body = json.dumps(document, indent=2, sort_keys=True).encode()
        for pause in (*RECORD_RETRIES_S, None):
            try:
                await self._records.put(
                    region=env.region, bucket=env.records.bucket, key=key, body=body
                )
                return True
            except ChatOpsError as exc:
                log.warning("record %s not written: %s", key, exc.user_message)
                if pause is None:
                    await self._steps.event(run, "records", "failed", detail=exc.user_message)
                    return False
                await self._steps.clock.sleep(pause)
        return False

    # -- a database restore --------------------------------------------------------------

    async def restore(self, run: Deployment, env: Environment) -> None:
        """Restore the run's snapshot to a NEW instance and wait until it answers. Raises
        ChatOpsError."""
        steps = self._steps
        assert run.restore is not None
        assert env.database is not None
        plan = run.restore
        await steps.event(
            run, "restore", "started", detail=f"`{plan.snapshot}` → `{plan.instance}`"
        )
        instance = await self._snapshots.restore(
            region=env.region, snapshot=plan.snapshot, new_instance=plan.instance, like=plan.source
        )
        deadline = steps.clock.now().timestamp() + env.database.restore_timeout_s
        while instance.status != "available":
            if steps.clock.now().timestamp() >= deadline:
                raise StageFailed(
                    "restore",
                    f"`{plan.instance}` was not available within "
                    f"{format_duration(env.database.restore_timeout_s)} (it is {instance.status}).",
                )
            await steps.clock.sleep(env.rollout.poll_interval_s)
            instance = await self._snapshots.instance(region=env.region, instance=plan.instance)
        await steps.deployments.set_fields(
            run.id,
            at=steps.clock.now(),
            restore=plan.model_copy(update={"endpoint": instance.endpoint}),
        )
        await steps.event(
            run, "restore", "done", detail=f"`{plan.instance}` at {instance.endpoint or 'unknown'}"
        )


def _kept(run: Deployment) -> str:
    """ "; the backup is kept" when the run took one: an environment without a database takes
    none, and a message must not promise one."""
    return "; the backup is kept" if run.backup_id else ""
