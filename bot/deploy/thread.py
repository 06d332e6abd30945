"""The noise budget of a card's thread: which stage events are posted, and the grouped progress
lines that stand for the per-service steps.

A run's timeline in the store keeps every event. The thread gets the run-level stages, every
failure and interruption, and, instead of four replies per service (register, update, steady,
health), one progress reply per quarter of the run's services: an 8-service deploy posts about
ten replies, a 200-service one about as many. The card shows each service's own step meanwhile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from store.deploy.models import StageEvent

# Per-service milestones that end a service's part of a stage, and how a progress line says so.
_MILESTONES = {
    ("health", "passed"): ("✅", "rolled out and healthy"),
    ("rollback", "done"): ("↩️", "rolled back and healthy"),
    ("retire", "done"): ("🌙", "old colour scaled to 0"),
}
# Run-level events the next message says better: the outcome follows at once.
_SAID_BY_THE_OUTCOME = {("rollout", "succeeded"), ("rollback", "done")}
# Progress replies per milestone kind over a whole run, at most (plus the last partial one).
PROGRESS_REPLIES = 4
# A progress line names this many services, then says how many more.
NAMED = 10


def posts_alone(event: StageEvent) -> bool:
    """True when the event gets a thread reply of its own: a run-level stage, a failure or an
    interruption of any step, and a service's migration (it changes the database)."""
    if event.status in ("failed", "interrupted"):
        return True
    if event.service is not None:
        return event.stage == "migrate"
    return (event.stage, event.status) not in _SAID_BY_THE_OUTCOME


@dataclass
class Progress:
    """The per-service milestones of one run not yet said in its thread."""

    total: int
    done: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    said: dict[tuple[str, str], int] = field(default_factory=dict)

    @classmethod
    def going_on(cls, total: int, *, healthy: set[str]) -> Progress:
        """The progress of a run this process did not start (a restart, a takeover): the
        services already `healthy` are counted as said, so the count goes on."""
        return cls(total=total, said={("health", "passed"): len(healthy)} if healthy else {})

    @property
    def chunk(self) -> int:
        return max(1, math.ceil(self.total / PROGRESS_REPLIES))

    def add(self, event: StageEvent) -> bool:
        """Note a per-service milestone; True when enough are waiting to be said."""
        key = (event.stage, event.status)
        if key not in _MILESTONES or event.service is None:
            return False
        waiting = self.done.setdefault(key, [])
        if event.service not in waiting:
            waiting.append(event.service)
        return len(waiting) >= self.chunk

    def take(self) -> list[str]:
        """The progress lines for everything waiting, which is then said."""
        lines = []
        for key, services in self.done.items():
            if not services:
                continue
            icon, words = _MILESTONES[key]
            self.said[key] = self.said.get(key, 0) + len(services)
            names = ", ".join(f"`{s}`" for s in services[:NAMED])
            more = f" and {len(services) - NAMED} more" if len(services) > NAMED else ""
            count = f"{self.said[key]}/{self.total}" if key == ("health", "passed") else ""
            noun = "service" if self.total == 1 else "services"
            head = f"{icon} {count} {noun} {words}" if count else f"{icon} {words}"
            lines.append(f"{head}: {names}{more}")
        self.done.clear()
        return lines
