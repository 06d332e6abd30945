"""The Roll back buttons beside one deploy: on its card while its rollback window is open, and
beside a suspect deploy in a war room.

Both take back every service of that deploy not taken back yet, from what ECS runs now to what
the deploy replaced, and start the rollback through `RollbackCommands`, under the rules of
`/rollback` (who may, the confirmation question when the database would not go back).
"""

from __future__ import annotations

import asyncio
import json

from commands.exchange import Click, Outcome
from commands.rollback.history import migrations_undone
from commands.rollback.usecases import RollbackCommands
from commands.runs.lifecycle import Runs
from pipeline.fleet import Fleet
from pipeline.kernel.config import Config, Environment
from pipeline.kernel.errors import Forbidden, NotFound
from pipeline.kernel.ports import Clock
from store.deploy.models import Deployment, Target, TargetStatus
from store.deploy.repository import Deployments
from store.incident.models import EventKind, IncidentEvent
from store.incident.repository import Incidents


def suspect_button_value(incident_id: str, deployment_id: str) -> str:
    """The value a war room's Roll back button carries, read back by `on_suspect_button`."""
    return json.dumps({"incident": incident_id, "deploy": deployment_id}, separators=(",", ":"))


class RollbackButtons:
    """What the Roll back buttons of a deploy's card and of a war room do."""

    def __init__(
        self,
        *,
        config: Config,
        deployments: Deployments,
        incidents: Incidents,
        runs: Runs,
        fleet: Fleet,
        rollback: RollbackCommands,
        clock: Clock,
    ) -> None:
        self._config = config
        self._deployments = deployments
        self._incidents = incidents
        self._runs = runs
        self._fleet = fleet
        self._rollback = rollback
        self._clock = clock

    async def on_window_button(self, click: Click) -> Outcome:
        """**Roll back** on a successful deploy's card, inside its window."""
        deploy = await self._runs.get(click.value)
        env = self._config.environment(deploy.environment)
        await self._rollback.authorize(env, click.user_id)
        if not deploy.window_open(self._clock.now()):
            raise Forbidden(
                "The rollback window of deployment `{id}` has closed{when}; the button changed "
                "nothing. `/rollback {env} {services}` still works: it posts a plan card that "
                "needs the approvals of `{env}`.",
                id=deploy.id,
                when=_closed_words(deploy),
                env=env.name,
                services=",".join(t.service for t in deploy.active_targets),
            )
        targets = await self._undo_targets(env, deploy)
        history = await self._deployments.succeeded(environment=env.name)
        return await self._rollback.begin(
            env,
            targets,
            user_id=click.user_id,
            channel_id=click.channel_id or deploy.channel_id or "",
            reason=f"Roll back button on deployment {deploy.id}",
            version=None,
            confirmed=True,
            needs_approvals=False,
            migrated=migrations_undone(history, targets),
        )

    async def on_suspect_button(self, click: Click) -> Outcome:
        """**Roll back** beside a suspect deploy in a war room: inside the deploy's window it
        starts at once, after it a plan card asks for approvals. Recorded in the timeline."""
        try:
            data = json.loads(click.value)
            incident_id, deploy_id = str(data["incident"]), str(data["deploy"])
        except (ValueError, KeyError, TypeError):
            raise NotFound("That button carries no deployment; nothing was changed.") from None
        incident = await self._incidents.get(incident_id)
        if incident is None:
            raise NotFound("No incident has the id `{id}`; nothing was changed.", id=incident_id)
        deploy = await self._runs.get(deploy_id)
        env = self._config.environment(deploy.environment)
        await self._rollback.authorize(env, click.user_id)
        if deploy.reverted_by is not None:
            raise Forbidden(
                "Deployment `{id}` was rolled back already (rollback `{by}`); nothing was changed.",
                id=deploy.id,
                by=deploy.reverted_by,
            )
        targets = await self._undo_targets(env, deploy)
        history = await self._deployments.succeeded(environment=env.name)
        outcome = await self._rollback.begin(
            env,
            targets,
            user_id=click.user_id,
            channel_id=incident.channel_id,
            reason=f"from the war room of {incident.severity.upper()} {incident.id}",
            version=None,
            confirmed=True,
            needs_approvals=not deploy.window_open(self._clock.now()),
            migrated=migrations_undone(history, targets),
        )
        if outcome.error is None and outcome.ref is not None:
            await self._incidents.record_event(
                incident.id,
                IncidentEvent(
                    at=self._clock.now(),
                    kind=EventKind.ROLLBACK,
                    actor=click.user_id,
                    detail=f"rollback {outcome.ref} of deployment {deploy.id} requested",
                ),
            )
        return outcome

    async def automatic(self, deploy: Deployment, reason: str) -> str | None:
        """A rollback the post-deploy watch starts inside the deploy's window, on behalf of
        the deploy's requester. Returns its id, or None when it cannot start at once (window
        closed, taken back already, or migrations to undo, which a person must confirm)."""
        env = self._config.environment(deploy.environment)
        if not deploy.window_open(self._clock.now()):
            return None
        targets = await self._undo_targets(env, deploy)
        history = await self._deployments.succeeded(environment=env.name)
        migrated = migrations_undone(history, targets)
        if migrated:
            return None
        outcome = await self._rollback.begin(
            env,
            targets,
            user_id=deploy.requested_by,
            channel_id=deploy.channel_id or "",
            reason=reason,
            version=None,
            confirmed=True,
            needs_approvals=False,
        )
        return outcome.ref if outcome.error is None else None

    async def _undo_targets(self, env: Environment, deploy: Deployment) -> list[Target]:
        """Every service of `deploy` not yet taken back: from what runs now to what it replaced."""
        wanted = list(deploy.not_taken_back)
        svcs = [self._config.service(t.service) for t in wanted]
        async with asyncio.TaskGroup() as tg:
            now_on = [tg.create_task(self._fleet.running_version(env, s)) for s in svcs]
        targets = []
        for t, task in zip(wanted, now_on, strict=True):
            current = task.result()
            skipped = current.task_definition == t.previous_task_def
            targets.append(
                Target(
                    service=t.service,
                    current_version=current.version,
                    target_version=t.current_version or "previous revision",
                    previous_task_def=current.task_definition,
                    new_task_def=t.previous_task_def,
                    status=TargetStatus.SKIPPED if skipped else TargetStatus.PENDING,
                    detail="already runs it" if skipped else None,
                    reverts=deploy.id,
                )
            )
        return targets


def _closed_words(run: Deployment) -> str:
    closed = run.window_closed_at or run.rollback_deadline
    if run.reverted_by is not None:
        return f" (it was rolled back by `{run.reverted_by}`)"
    return f" at {closed.strftime('%H:%M UTC')}" if closed else ""
