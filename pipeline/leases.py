"""What this replica holds: its presence, and the lease of each run it executes.

Each lease has a local deadline on this process's monotonic clock: the start of its last
successful renewal plus the ttl, minus a margin. The lease row's expiry is that renewal's wall
time plus the ttl, so a replica that cannot renew (the database unreachable or hanging) stops
trusting its lease `margin_s` before any other replica may take it over; the margin also
covers the difference between the replicas' clocks. See docs/high-availability.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pipeline.kernel.clock import monotonic_of
from pipeline.kernel.ports import Clock
from store.claims import TimerClaims
from store.leases import Fence, Leases, presence_lease, stamp

log = logging.getLogger(__name__)

# A replica stops acting this long (at most a quarter of the ttl) before its lease row expires.
FENCE_MARGIN_S = 5.0


@dataclass
class _Held:
    generation: int
    deadline: float
    lost: bool = False


class LeaseKeeper:
    """The leases this replica holds, renewed together; `take` one to act under it."""

    def __init__(
        self,
        leases: Leases,
        *,
        replica: str,
        clock: Clock,
        ttl_s: float,
        renew_s: float,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        if renew_s * 2 > ttl_s:
            raise ValueError(f"renew_s ({renew_s}) must be at most half of ttl_s ({ttl_s}).")
        self.leases = leases
        self.replica = replica
        self.ttl_s = ttl_s
        self.renew_s = renew_s
        self.margin_s = min(FENCE_MARGIN_S, ttl_s / 4)
        self._clock = clock
        self._mono = monotonic or monotonic_of(clock)
        self._held: dict[str, _Held] = {}

    def _deadline(self, started: float) -> float:
        return started + self.ttl_s - self.margin_s

    async def join(self) -> None:
        """Hold this replica's presence lease (taken back from an earlier life at once)."""
        await self.take(presence_lease(self.replica))

    async def take(self, name: str) -> Fence | None:
        """Acquire `name` (free, lapsed, or ours from an earlier life); the fence to act under,
        or None when another replica holds it."""
        started = self._mono()
        generation = await self.leases.acquire(
            name, owner=self.replica, now=self._clock.now(), ttl_s=self.ttl_s
        )
        if generation is None:
            return None
        self._held[name] = _Held(generation, self._deadline(started))
        return Fence(
            name,
            generation,
            valid=lambda: self.holds(name, generation),
            extend=lambda: self._extend(name, generation),
            lost=lambda: self._lose(name, generation),
        )

    def _lose(self, name: str, generation: int) -> None:
        """A write found `name` moved on: stop trusting it at once (any thread)."""
        held = self._held.get(name)
        if held is not None and held.generation == generation:
            held.lost = True

    def _extend(self, name: str, generation: int) -> tuple[str, Callable[[], None]]:
        """For a fenced write: the expiry it renews the lease to, and what moves the local
        deadline once the write is committed."""
        started = self._mono()

        def renewed() -> None:
            held = self._held.get(name)
            if held is not None and held.generation == generation:
                held.deadline = max(held.deadline, self._deadline(started))

        return stamp(self._clock.now() + timedelta(seconds=self.ttl_s)), renewed

    def holds(self, name: str, generation: int | None = None) -> bool:
        """Whether this replica may still act under `name` (at `generation`)."""
        held = self._held.get(name)
        return (
            held is not None
            and not held.lost
            and (generation is None or held.generation == generation)
            and self._mono() < held.deadline
        )

    async def renew(self) -> set[str]:
        """Renew every lease held; returns those another replica holds now (dropped here).
        Raises StoreError (or is cancelled by a timeout) when the database does not answer:
        the deadlines then stay where they were."""
        started = self._mono()
        snapshot = {name: held.generation for name, held in self._held.items()}
        lost = await self.leases.renew(
            snapshot, owner=self.replica, now=self._clock.now(), ttl_s=self.ttl_s
        )
        for name, generation in snapshot.items():
            held = self._held.get(name)
            if held is None or held.generation != generation:
                continue
            if name in lost:
                del self._held[name]
            else:
                held.deadline = self._deadline(started)
        if presence_lease(self.replica) in lost:
            log.warning("replica %s: its presence lease was taken; joining again", self.replica)
        return lost

    def generation(self, name: str) -> int | None:
        """The generation of `name` held here, or None."""
        held = self._held.get(name)
        return held.generation if held is not None else None

    def overdue(self) -> list[str]:
        """The leases whose local deadline passed (dropped here: this replica lost them)."""
        now = self._mono()
        gone = [name for name, h in self._held.items() if h.lost or now >= h.deadline]
        for name in gone:
            del self._held[name]
        return gone

    async def release(self, name: str, generation: int) -> None:
        """Give `name` up so another replica can take it at once (when still held)."""
        if self.holds(name, generation):
            del self._held[name]
            await self.leases.release(name, generation=generation)

    def drop(self, name: str, generation: int) -> None:
        """Stop holding `name` here; its row lapses by itself."""
        held = self._held.get(name)
        if held is not None and held.generation == generation:
            del self._held[name]

    @property
    def present(self) -> bool:
        return self.holds(presence_lease(self.replica))


# How long a claim of timed work holds before another replica may do the work instead: longer
# than any one firing takes (a Slack post with its retries).
FIRING_CLAIM_S = 120.0


class Firings:
    """Each firing of timed work (a key and its due time) done by one replica: `claim` it
    before doing it, then mark it `done`, or `release` it when the attempt failed."""

    def __init__(
        self,
        claims: TimerClaims,
        *,
        replica: str,
        clock: Clock,
        ttl_s: float = FIRING_CLAIM_S,
    ) -> None:
        self._claims = claims
        self.replica = replica
        self._clock = clock
        self._ttl_s = ttl_s

    async def claim(self, key: str, due: datetime | str) -> bool:
        return await self._claims.claim(
            key, due=due, owner=self.replica, now=self._clock.now(), ttl_s=self._ttl_s
        )

    async def done(self, key: str, due: datetime | str) -> None:
        await self._claims.finish(key, due=due, owner=self.replica)

    async def release(self, key: str, due: datetime | str) -> None:
        await self._claims.release(key, due=due, owner=self.replica)
