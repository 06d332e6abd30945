"""Ports: the small interfaces the use cases and the engine need from the outside world.

`bot/` implements the chat ports on Slack, `pipeline/aws/` the AWS ones; tests use fakes that
speak the same protocols. Nothing here imports Slack or AWS packages, and the methods take
domain values (`store` models), never Block Kit, payloads or Slack markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from pipeline.kernel.text import Line
from store.deploy.models import Deployment, StageEvent
from store.incident.models import Incident, IncidentEvent
from store.watch.models import Watch, WatchAlert


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class Timers(Protocol):
    """Wakes the bot when a stored due time comes (approval expiry, incident reminders).

    The database holds every due time; timers are re-armed from it at start-up. Arming a key
    again moves it; disarming an unknown key does nothing.
    """

    def arm(self, key: str, at: datetime) -> None: ...

    def disarm(self, key: str) -> None: ...


class TimerKind(StrEnum):
    """What a timer is for. Its key is `<kind>:<subject>` (`reminder:<incident id>`), and the
    runtime reads the kind back to know what to wake."""

    APPROVAL = "approval"
    REMINDER = "reminder"
    WINDOW = "window"
    LOCK = "lock"
    WATCH = "watch"

    def key(self, subject: str) -> str:
        """The key of this kind's timer for `subject` (a deployment, an incident, ...)."""
        return f"{self.value}:{subject}"


class Directory(Protocol):
    """Who belongs to a user group. Raises UnknownGroup when Slack has no such group, and
    UpstreamError when it cannot tell."""

    async def members_of(self, group_id: str) -> frozenset[str]: ...


class Notifier(Protocol):
    """Shows people how a deployment is going: its card, the card's thread, private notes.

    `post_card` raises UpstreamError when Slack refused the card (nothing posted) and
    OutcomeUnknown when it may have been posted unseen (look with `find_card` before posting
    again). The others must not stop a run, so the engine calls them through a guard.
    """

    async def post_card(self, run: Deployment) -> str:
        """Post the plan card where the run was requested; returns the message ts."""
        ...

    async def find_card(self, run: Deployment) -> str | None:
        """The ts of the card of `run` already in its channel, or None. Raises UpstreamError
        when it cannot look."""
        ...

    async def redraw(self, run: Deployment) -> None:
        """Bring the card of `run` to the run's state in the store (no-op without a card).

        Returns without waiting for Slack; a failed update is retried in the background."""
        ...

    async def tell(self, run: Deployment, message: Line) -> None:
        """Tell the requester of `run` privately. Raises UpstreamError when Slack refuses."""
        ...

    async def stage_changed(self, run: Deployment, event: StageEvent) -> None: ...

    async def break_glass(self, run: Deployment) -> None:
        """Tell the whole channel that a break-glass deploy was requested, and why."""
        ...

    async def run_changed(self, run: Deployment) -> None:
        """The run's state changed: redraw whatever shows it, announce the end."""
        ...


class CardLinks(Protocol):
    """Links to a run's card, for a message that points at it (`bot/` implements it)."""

    async def card_link(self, run: Deployment) -> str | None:
        """A link to the card of `run`; None when it has no card or Slack cannot say."""
        ...


@dataclass(frozen=True)
class Reminder:
    """A due incident reminder: how long since the last update, and whether it escalates.

    `key` names this one reminder (incident and due time): the message carries it, so a
    reminder whose post was not confirmed can be found instead of posted twice.
    """

    key: str
    escalate: bool
    since_update_s: float
    every_s: float
    escalate_to: tuple[str, ...]


@dataclass(frozen=True)
class NotInvited:
    """Someone Slack would not add to a channel, and Slack's reason."""

    user_id: str
    error: str


class IncidentChat(Protocol):
    """Slack as incidents need it. Implementations raise UpstreamError with a readable reason.

    `create_channel` makes a public channel named `name`, or `name-2`, `name-3`... when taken,
    and returns its ID and name; `post_alert` and `announce` return the message ts. Updates,
    resolutions and commander changes go to the war room and the announcement's thread.
    """

    async def create_channel(self, name: str) -> tuple[str, str]: ...
    async def archive_channel(self, channel_id: str) -> None: ...
    async def set_topic(self, incident: Incident) -> None: ...
    async def invite(self, channel_id: str, user_ids: Sequence[str]) -> list[NotInvited]:
        """Invite everyone who can be invited; return who could not be, and why."""
        ...

    async def post_alert(self, incident: Incident, suspects: Sequence[Deployment]) -> str: ...
    async def pin(self, channel_id: str, ts: str) -> None: ...
    async def announce(self, incident: Incident) -> str: ...
    async def tell_commander(self, incident: Incident, not_invited: Sequence[NotInvited]) -> None:
        """Say in the war room, to the commander, who could not be invited and why."""
        ...

    async def post_update(self, incident: Incident) -> None: ...
    async def post_resolved(
        self, incident: Incident, timeline: Sequence[IncidentEvent]
    ) -> None: ...
    async def post_reminder(self, incident: Incident, reminder: Reminder) -> None: ...
    async def reminder_posted(self, incident: Incident, reminder: Reminder) -> bool:
        """True when the war room already shows the reminder `reminder.key`."""
        ...

    async def commander_changed(self, incident: Incident, previous: str) -> None: ...
    async def in_room(self, channel_id: str, user_id: str) -> bool:
        """True when `user_id` is a member of channel `channel_id` now."""
        ...

    async def redraw(self, incident: Incident, suspects: Sequence[Deployment]) -> None:
        """Show `incident` as it is now in the war room's topic, its pinned alert and its
        announcement: commander, status, and once resolved, no buttons. Each place that fails
        is logged, not raised."""
        ...


@dataclass(frozen=True)
class ServiceStatus:
    """What ECS says about one service right now."""

    task_definition: str
    desired: int
    running: int
    deployments: int
    rollout_failed: bool
    failure_reason: str | None = None

    def runs(self, task_definition: str) -> bool:
        """True when every task runs `task_definition` and no old deployment is left."""
        return (
            self.task_definition == task_definition
            and self.running == self.desired
            and self.deployments <= 1
        )


class Ecs(Protocol):
    """The ECS operations the pipeline needs. Implementations must be idempotent-safe to retry."""

    async def describe(self, *, region: str, cluster: str, service: str) -> ServiceStatus: ...

    async def image_of(self, *, region: str, task_definition: str, container: str) -> str: ...

    async def register_with_image(
        self, *, region: str, task_definition: str, container: str, image: str, deployment_id: str
    ) -> str:
        """Register a copy of `task_definition` with `container`'s image replaced; its ARN.

        The revision is tagged with `deployment_id`; when the family already has one so tagged
        (registered before a crash), that one is returned and nothing is registered.
        """
        ...

    async def find_registered(
        self, *, region: str, task_definition: str, deployment_id: str
    ) -> str | None:
        """The revision `register_with_image` registered for `deployment_id` as a copy of
        `task_definition`, or None when the family has none yet. Registers nothing."""
        ...

    async def update_service(
        self,
        *,
        region: str,
        cluster: str,
        service: str,
        task_definition: str | None = None,
        desired: int | None = None,
    ) -> None:
        """Move `service` to `task_definition` and/or `desired` tasks (None: unchanged)."""
        ...


class WatchChat(Protocol):
    """Shows people what the post-deploy watch sees (`bot/watch/adapter.py` on Slack).

    `alert` and `find_alert` raise UpstreamError when Slack refuses or does not answer (the
    alert stays recorded and unposted, and is tried again later); `show` must not raise.
    """

    async def alert(
        self, run: Deployment, watch: Watch, alert: WatchAlert, *, rollback_id: str | None
    ) -> str | None:
        """Post `alert` in the run's thread and to its channel, mentioning the requester and
        the approvers, with the figures and Roll back and Open incident, or the rollback the
        watch started (`rollback_id`); the message carries the alert's identity (its watch,
        signals and number) so `find_alert` can tell it. Returns its ts (None: the run has no
        channel, nothing was posted)."""
        ...

    async def find_alert(self, run: Deployment, watch: Watch, alert: WatchAlert) -> str | None:
        """The ts of `alert`'s message among the run's channel's recent messages, or None: a
        post that was tried and never confirmed may have been taken all the same."""
        ...

    async def show(self, run: Deployment) -> None:
        """Redraw the run's card so it shows its watches as stored."""
        ...


class WarRooms(Protocol):
    """Says something in an incident's war room (`bot/incident/adapter.py` on Slack)."""

    async def tell_room(self, incident: Incident, message: Line) -> None:
        """Post `message` in the war room. Raises UpstreamError when Slack refuses."""
        ...
