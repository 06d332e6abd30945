"""Incident reminders: when an open incident's next update is due, the war room is reminded,
and from the second unanswered reminder on the configured people are called in.

Reminders are due times in the store; a timer per incident wakes `remind` at each one, re-armed
at start-up, and the safety sweep posts any a timer missed. Each is posted exactly once, also
when a process dies while posting it. Slack is reached only through the `IncidentChat` port.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from pipeline.kernel.config import Config
from pipeline.kernel.config.incidents import Severity
from pipeline.kernel.ports import Clock, IncidentChat, Reminder, TimerKind, Timers
from pipeline.leases import Firings
from store.incident.models import EventKind, Incident, IncidentEvent
from store.incident.repository import Claim, Incidents

log = logging.getLogger(__name__)

# A reminder whose post failed is tried again this much later (Slack down, a missing scope).
RETRY_S = 30.0


reminder_timer = TimerKind.REMINDER.key


class Reminders:
    """Arms, moves and posts the reminders of open incidents. Reads and writes the store."""

    def __init__(
        self,
        *,
        config: Config,
        incidents: Incidents,
        chat: IncidentChat,
        timers: Timers,
        clock: Clock,
        on_fired: Callable[[str, float], None] | None = None,
        firings: Firings | None = None,
    ) -> None:
        """`on_fired(severity, late_s)` hears of each reminder posted, and how long after its
        due time (the bot's metrics). With `firings` (replicas), each reminder is claimed
        across replicas before anything else, so one replica posts it."""
        self._firings = firings
        self._config = config
        self._on_fired = on_fired
        self._incidents = incidents
        self._chat = chat
        self._timers = timers
        self._clock = clock
        # Marks this process's reminder claims; a claim with another token is a dead process's.
        self._token = secrets.token_hex(8)

    def next_due(self, severity: str, after: datetime) -> datetime | None:
        """When an incident of `severity` updated at `after` needs its next update (None:
        that severity has no reminders)."""
        every = self._config.incidents.severities[severity].update_every_s
        return after + timedelta(seconds=every) if every else None

    def arm(self, incident: Incident) -> None:
        """Move the incident's timer to its next due update, or remove it (resolved, none due)."""
        if incident.is_open and incident.next_update_due_at is not None:
            self._timers.arm(reminder_timer(incident.id), incident.next_update_due_at)
        else:
            self._timers.disarm(reminder_timer(incident.id))

    async def arm_timers(self) -> int:
        """Arm the reminder timer of every open incident (at start-up). Returns how many."""
        armed = 0
        for incident in await self._incidents.open_incidents():
            if incident.next_update_due_at is not None:
                self.arm(incident)
                armed += 1
        return armed

    async def send_due_reminders(self) -> int:
        """Post every reminder that is due (the safety sweep); returns how many were posted."""
        sent = 0
        for incident in await self._incidents.open_incidents():
            try:
                sent += await self.remind(incident.id)
            except Exception:
                log.exception(
                    "reminder for incident %s failed; retrying later",
                    incident.id,
                    extra={"incident_id": incident.id},
                )
        return sent

    async def remind(self, incident_id: str) -> bool:
        """Post the reminder due now for `incident_id`, exactly once; True when posted.

        The reminder is claimed in the store first. A claim left by a process that died while
        posting may mean Slack has it already, so the war room is searched for the reminder's
        key before posting again. A failed post releases the claim and re-arms the timer.
        """
        incident = await self._incidents.get(incident_id)
        now = self._clock.now()
        if incident is None or not incident.is_open:
            return False
        due = incident.next_update_due_at
        severity = self._config.incidents.severities.get(incident.severity)
        if due is None or severity is None or severity.update_every_s is None:
            return False
        if due > now:
            self.arm(incident)
            return False
        firing = reminder_timer(incident.id)
        if self._firings is not None and not await self._firings.claim(firing, due):
            return False  # another replica has it
        try:
            posted = await self._post(
                incident, due=due, now=now, every_s=severity.update_every_s, severity=severity
            )
        except BaseException:
            if self._firings is not None:
                await self._firings.release(firing, due)
            raise
        if self._firings is not None:
            await self._firings.done(firing, due)
        return posted

    async def _post(
        self,
        incident: Incident,
        *,
        due: datetime,
        now: datetime,
        every_s: float,
        severity: Severity,
    ) -> bool:
        claim = await self._incidents.claim_reminder(incident.id, due=due, token=self._token)
        if claim is Claim.BUSY:
            return False
        reminder = Reminder(
            key=f"{incident.id}@{due.isoformat()}",
            escalate=incident.unanswered_reminders >= 1,
            since_update_s=(now - incident.last_update_at).total_seconds(),
            every_s=every_s,
            escalate_to=tuple(severity.escalate_to),
        )
        try:
            seen = claim is Claim.TAKEN_OVER and await self._chat.reminder_posted(
                incident, reminder
            )
            if not seen:
                await self._chat.post_reminder(incident, reminder)
        except BaseException:
            await self._incidents.release_reminder(incident.id, token=self._token)
            self._timers.arm(reminder_timer(incident.id), now + timedelta(seconds=RETRY_S))
            raise
        # A full interval after this reminder, not after its due time: one posted late (the bot
        # was down, a post was retried) must not be followed at once by an escalation.
        next_due = now + timedelta(seconds=every_s)
        minutes = round(reminder.since_update_s / 60)
        event = IncidentEvent(
            at=now,
            kind=EventKind.ESCALATION if reminder.escalate else EventKind.REMINDER,
            detail=f"no update for {minutes} min",
        )
        after = await self._incidents.finish_reminder(
            incident.id, due=due, token=self._token, next_due=next_due, event=event
        )
        if after is not None:
            self.arm(after)
        if not seen and self._on_fired is not None:
            self._on_fired(incident.severity, (self._clock.now() - due).total_seconds())
        return not seen
