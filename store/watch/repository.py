"""Watches and their alerts in SQLite. An alert is recorded in the same transaction as the
change of the watch it comes from (a compare-and-set on the watch's `alerted` set), so a
restart re-posts an alert that was recorded and not posted, and never records one twice."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from store.database import Database
from store.db import Repository
from store.sql import all_rows, changes_one
from store.watch.models import AlertKind, Watch, WatchAlert, WatchState

_ALERT_COLUMNS = "watch_id, seq, at, kind, signals, figures, posted_at, tried_at, ts"
_COLUMNS = (
    "id, deployment_id, service, environment, started_at, ends_at, next_check_at, state, "
    "alerted, missing_said, figures, failure, outcome, "
    "(SELECT count(*) FROM watch_alerts a WHERE a.watch_id = watches.id "
    "AND a.kind IN ('breach', 'rolled_back')), regressed, baseline"
)


def _names(text: str) -> frozenset[str]:
    return frozenset(n for n in text.split(",") if n)


def _text(names: Iterable[str]) -> str:
    return ",".join(sorted(names))


def _watch(row: tuple[Any, ...]) -> Watch:
    return Watch(
        id=row[0],
        deployment_id=row[1],
        service=row[2],
        environment=row[3],
        started_at=datetime.fromisoformat(row[4]),
        ends_at=datetime.fromisoformat(row[5]),
        next_check_at=datetime.fromisoformat(row[6]),
        state=WatchState(row[7]),
        alerted=_names(row[8]),
        missing_said=_names(row[9]),
        figures=row[10],
        failure=row[11],
        outcome=row[12],
        alerts=row[13],
        regressed=_names(row[14]),
        baseline=None if row[15] is None else json.loads(row[15]),
    )


def _alert(row: tuple[Any, ...]) -> WatchAlert:
    return WatchAlert(
        watch_id=row[0],
        seq=row[1],
        at=datetime.fromisoformat(row[2]),
        kind=AlertKind(row[3]),
        signals=tuple(n for n in row[4].split(",") if n),
        figures=row[5],
        posted_at=datetime.fromisoformat(row[6]) if row[6] else None,
        tried_at=datetime.fromisoformat(row[7]) if row[7] else None,
        ts=row[8],
    )


class Watches(Repository):
    """The repository of watches. Every method runs on the store's thread."""

    async def start(self, watches: list[Watch]) -> list[Watch]:
        """Record new watches; a (run, service) already watched is kept as it is. Returns the
        watches of those pairs as stored."""

        def run(db: Database) -> list[Watch]:
            with db.atomic():
                for w in watches:
                    db.execute(
                        "INSERT INTO watches (id, deployment_id, service, environment, "
                        "started_at, ends_at, next_check_at, state) VALUES (?,?,?,?,?,?,?,?) "
                        "ON CONFLICT DO NOTHING",
                        [
                            w.id,
                            w.deployment_id,
                            w.service,
                            w.environment,
                            w.started_at.isoformat(),
                            w.ends_at.isoformat(),
                            w.next_check_at.isoformat(),
                            w.state.value,
                        ],
                    )
            return [x for w in watches if (x := _get(db, w.id)) is not None]

        return await self._store.call(run)

    async def get(self, watch_id: str) -> Watch | None:
        return await self._store.call(lambda db: _get(db, watch_id))

    async def of_run(self, deployment_id: str) -> list[Watch]:
        def run(db: Database) -> list[Watch]:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM watches WHERE deployment_id = ? "  # noqa: S608 - constant
                "ORDER BY service",
                [deployment_id],
            ).fetchall()
            return [_watch(r) for r in rows]

        return await self._store.call(run)

    async def watching(self) -> list[Watch]:
        def run(db: Database) -> list[Watch]:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM watches "  # noqa: S608 - _COLUMNS is a constant
                "WHERE state = 'watching' ORDER BY id"
            ).fetchall()
            return [_watch(r) for r in rows]

        return await self._store.call(run)

    async def checked(
        self,
        watch: Watch,
        *,
        next_check_at: datetime,
        alerted: frozenset[str],
        missing_said: frozenset[str],
        figures: str | None,
        failure: str | None,
        alert: WatchAlert | None = None,
        regressed: frozenset[str] | None = None,
        baseline: dict[str, tuple[float, ...]] | None = None,
    ) -> bool:
        """A check's result, compared-and-set against the watch as it was read (`alerted`,
        `missing_said`, `regressed`, `next_check_at`): False, with nothing written, when another
        check got there first. `alert` is recorded with it, unposted; `baseline` only where
        none is kept yet."""
        regressed = watch.regressed if regressed is None else regressed

        def run(db: Database) -> bool:
            with db.atomic():
                changed = db.execute(
                    "UPDATE watches SET next_check_at = ?, alerted = ?, missing_said = ?, "
                    "regressed = ?, baseline = coalesce(baseline, ?), figures = ?, failure = ? "
                    "WHERE id = ? AND state = 'watching' AND next_check_at = ? AND alerted = ? "
                    "AND missing_said = ? AND regressed = ?",
                    [
                        next_check_at.isoformat(),
                        _text(alerted),
                        _text(missing_said),
                        _text(regressed),
                        None if baseline is None else json.dumps(baseline),
                        figures,
                        failure,
                        watch.id,
                        watch.next_check_at.isoformat(),
                        _text(watch.alerted),
                        _text(watch.missing_said),
                        _text(watch.regressed),
                    ],
                ).rowcount
                if changed != 1:
                    return False
                if alert is not None:
                    _insert_alert(db, alert)
                return True

        return await self._store.call(run)

    async def end(self, watch_id: str, *, outcome: str) -> bool:
        """End a watch once (compare-and-set); False when it had ended already."""

        return await self._store.call(
            changes_one(
                "UPDATE watches SET state = 'ended', outcome = ? "
                "WHERE id = ? AND state = 'watching'",
                [outcome, watch_id],
            )
        )

    async def unposted(self) -> list[WatchAlert]:
        """Alerts recorded and not yet taken by Slack (a crash or a refusal in between)."""
        sql = (
            f"SELECT {_ALERT_COLUMNS} FROM watch_alerts "  # noqa: S608 - a constant
            "WHERE posted_at IS NULL ORDER BY at, watch_id, seq"
        )
        return await self._store.call(all_rows(sql, [], _alert))

    async def trying(self, alert: WatchAlert, *, at: datetime) -> None:
        """Record that Slack is being asked to post `alert` (before asking): from now on its
        post may have happened unseen. The first try's time is kept."""

        await self._store.call(
            changes_one(
                "UPDATE watch_alerts SET tried_at = coalesce(tried_at, ?) "
                "WHERE watch_id = ? AND seq = ?",
                [at.isoformat(), alert.watch_id, alert.seq],
            )
        )

    async def posted(self, alert: WatchAlert, *, at: datetime, ts: str | None = None) -> bool:
        """Mark an alert posted (as message `ts`, when it went to a channel), once."""

        return await self._store.call(
            changes_one(
                "UPDATE watch_alerts SET posted_at = ?, ts = ? WHERE watch_id = ? AND seq = ? "
                "AND posted_at IS NULL",
                [at.isoformat(), ts, alert.watch_id, alert.seq],
            )
        )

    async def alerts(self, watch_id: str) -> list[WatchAlert]:
        sql = (
            f"SELECT {_ALERT_COLUMNS} FROM watch_alerts "  # noqa: S608 - a constant
            "WHERE watch_id = ? ORDER BY seq"
        )
        return await self._store.call(all_rows(sql, [watch_id], _alert))


def _get(db: Database, watch_id: str) -> Watch | None:
    sql = f"SELECT {_COLUMNS} FROM watches WHERE id = ?"  # noqa: S608 - _COLUMNS is a constant
    row = db.execute(sql, [watch_id]).fetchone()
    return _watch(row) if row is not None else None


def _insert_alert(db: Database, alert: WatchAlert) -> None:
    seq = db.execute(
        "SELECT coalesce(max(seq), 0) + 1 FROM watch_alerts WHERE watch_id = ?", [alert.watch_id]
    ).fetchone()[0]
    db.execute(
        "INSERT INTO watch_alerts (watch_id, seq, at, kind, signals, figures) VALUES (?,?,?,?,?,?)",
        [
            alert.watch_id,
            seq,
            alert.at.isoformat(),
            alert.kind.value,
            ",".join(alert.signals),
            alert.figures,
        ],
    )
