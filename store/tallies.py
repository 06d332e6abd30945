"""What `GET /metrics` counts from the database: finished runs, requests awaiting approval, open
incidents, watch alerts. One read on the store thread; nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass

from store.database import Database
from store.db import Repository
from store.deploy.models import DeploymentState

_FINISHED = tuple(s.value for s in DeploymentState if s.finished)


@dataclass(frozen=True)
class Tally:
    """The counts, each keyed by its labels."""

    finished_runs: dict[tuple[str, str, str], int]
    """(environment, kind, final state) -> runs that ended so."""
    awaiting_approval: dict[str, int]
    """environment -> requests awaiting approval now."""
    open_incidents: dict[str, int]
    """severity -> incidents not resolved."""
    watch_alerts: dict[tuple[str, str], int]
    """(environment, alert kind) -> alerts the post-deploy watch raised."""


class Tallies(Repository):
    """Counts rows by their labels. Finished runs, resolved incidents and alerts never change
    again, so the totals only grow."""

    async def read(self) -> Tally:
        """All the counts at one moment. Raises StoreError when the database fails."""

        def count(db: Database) -> Tally:
            marks = ",".join("?" * len(_FINISHED))
            runs = db.execute(
                "SELECT environment, kind, state, count(*) FROM deployments "  # noqa: S608
                f"WHERE state IN ({marks}) GROUP BY environment, kind, state",
                list(_FINISHED),
            ).fetchall()
            pending = db.execute(
                "SELECT environment, count(*) FROM deployments WHERE state = ? "
                "GROUP BY environment",
                [DeploymentState.AWAITING_APPROVAL.value],
            ).fetchall()
            incidents = db.execute(
                "SELECT severity, count(*) FROM incidents WHERE resolved_at IS NULL "
                "GROUP BY severity"
            ).fetchall()
            alerts = db.execute(
                "SELECT w.environment, a.kind, count(*) FROM watch_alerts a "
                "JOIN watches w ON w.id = a.watch_id GROUP BY w.environment, a.kind"
            ).fetchall()
            return Tally(
                finished_runs={(e, k, s): n for e, k, s, n in runs},
                awaiting_approval=dict(pending),
                open_incidents=dict(incidents),
                watch_alerts={(e, k): n for e, k, n in alerts},
            )

        return await self._store.call(count)
