"""What the App Home shows one person: per environment, the runs in progress and their stage,
the open rollback windows, the lock, the deploy windows or the freeze, the open incidents, and
the requests waiting for that person's approval.

Reads the store and the config, and asks Slack (through `Access`) only who is in the approvers'
user groups. Drawing it is `bot/home`'s work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from commands.access import Access
from pipeline.freezes import FREEZING_SEVERITIES, named_services
from pipeline.kernel.config import Config, Environment
from pipeline.kernel.config.gates import Freeze
from pipeline.kernel.ports import Clock
from store.db import Store
from store.deploy.locks import Lock, Locks
from store.deploy.models import Deployment, DeploymentState
from store.deploy.repository import Deployments
from store.incident.models import Incident
from store.incident.repository import Incidents


@dataclass(frozen=True)
class EnvironmentHome:
    """One environment as the viewer sees it."""

    name: str
    confirm_buttons: bool
    """Approve and Reject ask "are you sure?" first (the environment's `confirm_buttons`)."""
    canary_stages: int
    running: tuple[Deployment, ...]
    """Approved and not finished: waiting, running or rolling back."""
    windows: tuple[Deployment, ...]
    """Succeeded deploys that can still be rolled back without approvals."""
    lock: Lock | None
    freeze: Freeze | None
    """The dated freeze in force now."""
    open_now: bool
    next_open: datetime | None
    deploy_windows: tuple[str, ...]
    timezone: str
    incidents: tuple[Incident, ...]
    frozen_by: Mapping[str, tuple[str, ...]]
    """The services each open P1 or P2 (by id) freezes the deploys of."""
    waiting_for_you: tuple[Deployment, ...]
    """Requests the viewer may approve or reject now."""
    awaiting_others: tuple[Deployment, ...]
    """Requests awaiting approval the viewer cannot decide (their own, decided, or not theirs)."""


@dataclass(frozen=True)
class Dashboard:
    viewer: str
    now: datetime
    environments: tuple[EnvironmentHome, ...]

    @property
    def waiting_for_you(self) -> int:
        return sum(len(e.waiting_for_you) for e in self.environments)


@dataclass(frozen=True)
class Snapshot:
    """The store's part of every Home at one moment: shared by all the viewers drawn from it."""

    now: datetime
    runs: tuple[Deployment, ...]
    """Awaiting approval or in flight."""
    windows: tuple[Deployment, ...]
    locks: Mapping[str, Lock]
    incidents: tuple[Incident, ...]


# How long the Home trusts what Slack said of a user group's members (approvers): a Home may
# offer buttons a minute after its viewer left the group; the click itself asks Slack again.
GROUP_MEMBERS_TTL_S = 60.0


class HomeReader:
    """Reads one person's App Home from the store. Touches no AWS; Slack only for user groups
    (UpstreamError when Slack cannot say who is in one)."""

    def __init__(self, config: Config, store: Store, *, access: Access, clock: Clock) -> None:
        self._config = config
        self._deployments = Deployments(store)
        self._locks = Locks(store)
        self._incidents = Incidents(store)
        self._access = access
        self._clock = clock
        self._groups: dict[str, tuple[datetime, frozenset[str]]] = {}

    async def snapshot(self) -> Snapshot:
        """What every viewer's Home is drawn from, read once (four store reads)."""
        now = self._clock.now()
        states = [DeploymentState.AWAITING_APPROVAL, *(s for s in DeploymentState if s.in_flight)]
        return Snapshot(
            now=now,
            runs=tuple(await self._deployments.in_states(states)),
            windows=tuple(r for r in await self._deployments.open_windows() if r.window_open(now)),
            locks={lock.environment: lock for lock in await self._locks.all()},
            incidents=tuple(await self._incidents.open_incidents()),
        )

    async def dashboard(self, viewer: str, seen: Snapshot | None = None) -> Dashboard:
        """`viewer`'s Home, drawn from `seen` (a fresh snapshot when None)."""
        seen = seen if seen is not None else await self.snapshot()
        now = seen.now
        environments = []
        for env in self._config.environments.values():
            lock = seen.locks.get(env.name)
            here = seen.incidents if env.name == self._config.incidents.environment else ()
            mine = [r for r in seen.runs if r.environment == env.name]
            pending = [r for r in mine if _pending(r, now)]
            yours = [r for r in pending if await self._may_decide(viewer, r, env)]
            environments.append(
                EnvironmentHome(
                    name=env.name,
                    confirm_buttons=env.confirm_buttons,
                    canary_stages=len(env.canary.stages),
                    running=tuple(r for r in mine if r.state.in_flight),
                    windows=tuple(r for r in seen.windows if r.environment == env.name),
                    lock=lock if lock is not None and lock.active(now) else None,
                    freeze=env.schedule.freeze_at(now),
                    open_now=env.schedule.open_at(now),
                    next_open=None if env.schedule.open_at(now) else env.schedule.next_open(now),
                    deploy_windows=tuple(env.schedule.windows),
                    timezone=env.schedule.timezone,
                    incidents=here,
                    frozen_by=self._frozen_by(here),
                    waiting_for_you=tuple(yours),
                    awaiting_others=tuple(r for r in pending if r not in yours),
                )
            )
        return Dashboard(viewer=viewer, now=now, environments=tuple(environments))

    async def _may_decide(self, viewer: str, run: Deployment, env: Environment) -> bool:
        """What the Approve and Reject buttons accept: an approver of the environment who did
        not ask for it and has not decided on it yet."""
        if viewer == run.requested_by or any(a.user_id == viewer for a in run.approvals):
            return False
        if viewer in env.approvers:
            return True
        for group in (i for i in env.approvers if i.startswith("S")):
            if viewer in await self._members_of(group):
                return True
        return False

    async def _members_of(self, group: str) -> frozenset[str]:
        """A user group's members, asked of Slack at most once a `GROUP_MEMBERS_TTL_S`: every
        viewer's Home is drawn on every change, and usergroups.users.list is a Tier 2 method."""
        now = self._clock.now()
        known = self._groups.get(group)
        if known is not None and known[0] > now:
            return known[1]
        members = await self._access.members_of(group)
        self._groups[group] = (now + timedelta(seconds=GROUP_MEMBERS_TTL_S), members)
        return members

    def _frozen_by(self, incidents: Sequence[Incident]) -> dict[str, tuple[str, ...]]:
        return {
            i.id: tuple(sorted(named_services(i, self._config)))
            for i in incidents
            if i.severity.lower() in FREEZING_SEVERITIES
        }


def _pending(run: Deployment, now: datetime) -> bool:
    """A request still asking for approvals (one past its time is about to expire)."""
    return (
        run.state is DeploymentState.AWAITING_APPROVAL
        and run.required_approvals > 0
        and (run.approval_due_at is None or now < run.approval_due_at)
    )
