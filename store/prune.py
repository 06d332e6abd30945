"""Forgetting what the bot no longer needs: audit rows past their retention, replay keys past
Slack's replay window. Plain DELETEs by age on the store thread; it never touches a run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from store.database import Database
from store.db import Store
from store.deploy.models import DeploymentState
from store.leases import stamp

_IN_FLIGHT = [s.value for s in DeploymentState if s.in_flight]


@dataclass(frozen=True)
class Pruned:
    """How many rows one pass deleted."""

    audit_rows: int
    replay_keys: int


class Pruner:
    """Deletes audit rows older than `audit_retention_s` and replay keys whose expiry passed."""

    def __init__(self, store: Store, *, audit_retention_s: float) -> None:
        if audit_retention_s <= 0:
            raise ValueError(f"audit_retention_s must be positive, not {audit_retention_s}.")
        self._store = store
        self._audit_retention = timedelta(seconds=audit_retention_s)

    async def prune(self, now: datetime) -> Pruned:
        """One pass, in one transaction. Raises StoreError when the database fails.

        A replay key's `expires_at` is the end of Slack's five-minute window for its request
        (or of Socket Mode's envelope memory): deleted only after it, so a replay is still caught.
        """
        audit_before = (now - self._audit_retention).isoformat()

        def delete(db: Database) -> Pruned:
            with db.atomic():
                # julianday() compares instants, whatever the stored offset or precision.
                audit = db.execute(
                    "DELETE FROM audit_log WHERE julianday(at) < julianday(?)", [audit_before]
                )
                keys = db.execute(
                    "DELETE FROM seen_requests WHERE julianday(expires_at) < julianday(?)",
                    [now.isoformat()],
                )
                # Claims of timed work a day old (long done or lapsed), the presence of
                # replicas gone for a day, and the leases of finished runs (a run in flight
                # keeps its lease and its generation).
                day_ago = stamp(now - timedelta(days=1))
                db.execute("DELETE FROM timer_claims WHERE claimed_at < ?", [day_ago])
                db.execute(
                    "DELETE FROM leases WHERE name LIKE 'replica:%' AND expires_at < ?", [day_ago]
                )
                marks = ",".join("?" * len(_IN_FLIGHT))
                db.execute(
                    "DELETE FROM leases WHERE name LIKE 'run:%' AND expires_at < ? "  # noqa: S608
                    "AND NOT EXISTS (SELECT 1 FROM deployments d "
                    f"WHERE 'run:' || d.id = leases.name AND d.state IN ({marks}))",
                    [day_ago, *_IN_FLIGHT],
                )
                return Pruned(audit_rows=audit.rowcount, replay_keys=keys.rowcount)

        return await self._store.call(delete)
