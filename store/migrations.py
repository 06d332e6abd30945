"""Ordered schema migrations. Append new ones; never edit one that has shipped."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from store.database import Database


def _run_script(db: Database, script: str) -> None:
    # executescript() would COMMIT first and break the migration's transaction.
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _m001_deployments(db: Database) -> None:
    _run_script(
        db,
        """
        CREATE TABLE deployments (
            id TEXT PRIMARY KEY,
            environment TEXT NOT NULL,
            requested_by TEXT NOT NULL,
            version TEXT,
            state TEXT NOT NULL,
            stage TEXT,
            required_approvals INTEGER NOT NULL,
            channel_id TEXT,
            message_ts TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            approval_due_at TEXT,
            started_at TEXT,
            finished_at TEXT,
            error TEXT
        );
        CREATE INDEX deployments_state ON deployments(state);
        CREATE INDEX deployments_env_created ON deployments(environment, created_at);
        CREATE TABLE deployment_targets (
            deployment_id TEXT NOT NULL REFERENCES deployments(id),
            position INTEGER NOT NULL,
            service TEXT NOT NULL,
            current_version TEXT,
            target_version TEXT NOT NULL,
            previous_task_def TEXT,
            new_task_def TEXT,
            status TEXT NOT NULL,
            detail TEXT,
            PRIMARY KEY (deployment_id, service)
        );
        CREATE TABLE approvals (
            deployment_id TEXT NOT NULL REFERENCES deployments(id),
            user_id TEXT NOT NULL,
            decision TEXT NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (deployment_id, user_id)
        );
        CREATE TABLE deployment_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            deployment_id TEXT NOT NULL REFERENCES deployments(id),
            at TEXT NOT NULL,
            stage TEXT NOT NULL,
            service TEXT,
            status TEXT NOT NULL,
            detail TEXT
        );
        CREATE INDEX deployment_events_run ON deployment_events(deployment_id, id);
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            outcome TEXT NOT NULL,
            channel_id TEXT,
            detail TEXT
        );
        """,
    )


def _m002_incidents(db: Database) -> None:
    # next_update_due_at is the reminder schedule; reminder_claim marks a reminder being posted
    # (the claiming process's token), so a restart neither loses nor doubles one.
    _run_script(
        db,
        """
        CREATE TABLE incidents (
            id TEXT PRIMARY KEY,
            severity TEXT NOT NULL,
            summary TEXT NOT NULL,
            service TEXT,
            status TEXT NOT NULL,
            impact TEXT NOT NULL,
            action TEXT,
            eta TEXT NOT NULL,
            declared_by TEXT NOT NULL,
            declared_in TEXT,
            channel_id TEXT NOT NULL UNIQUE,
            channel_name TEXT NOT NULL,
            alert_ts TEXT,
            announce_channel TEXT,
            announce_ts TEXT,
            opened_at TEXT NOT NULL,
            last_update_at TEXT NOT NULL,
            next_update_due_at TEXT,
            unanswered_reminders INTEGER NOT NULL DEFAULT 0,
            reminder_claim TEXT,
            resolved_at TEXT,
            resolution TEXT,
            follow_up TEXT
        );
        CREATE INDEX incidents_open ON incidents(resolved_at, next_update_due_at);
        CREATE TABLE incident_roles (
            incident_id TEXT NOT NULL REFERENCES incidents(id),
            role TEXT NOT NULL,
            user_id TEXT NOT NULL,
            assigned_at TEXT NOT NULL,
            PRIMARY KEY (incident_id, role)
        );
        CREATE TABLE incident_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            incident_id TEXT NOT NULL REFERENCES incidents(id),
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            actor TEXT,
            detail TEXT
        );
        CREATE INDEX incident_events_incident ON incident_events(incident_id, id);
        """,
    )


def _m003_raw_commander_ids(db: Database) -> None:
    # Commander events used to store "<@A> → <@B>"; the store keeps raw IDs only, so keep B.
    rows = db.execute(
        "SELECT id, detail FROM incident_events WHERE kind = 'commander' AND detail LIKE '%<@%'"
    ).fetchall()
    for event_id, detail in rows:
        found = re.findall(r"<@([A-Z0-9]+)>", detail)
        if found:
            db.execute("UPDATE incident_events SET detail = ? WHERE id = ?", [found[-1], event_id])


def _m004_rollbacks(db: Database) -> None:
    # A run is a deploy or a rollback (which may revert a deploy, with a reason); a successful
    # deploy keeps its rollback window's deadline, when the window closed, and who reverted it.
    _run_script(
        db,
        """
        ALTER TABLE deployments ADD COLUMN kind TEXT NOT NULL DEFAULT 'deploy';
        ALTER TABLE deployments ADD COLUMN reverts TEXT;
        ALTER TABLE deployments ADD COLUMN reason TEXT;
        ALTER TABLE deployments ADD COLUMN rollback_deadline TEXT;
        ALTER TABLE deployments ADD COLUMN window_closed_at TEXT;
        ALTER TABLE deployments ADD COLUMN reverted_by TEXT;
        ALTER TABLE deployment_targets ADD COLUMN reverted_by TEXT;
        ALTER TABLE deployment_targets ADD COLUMN reverts TEXT;
        CREATE INDEX deployments_env_state ON deployments(environment, state, finished_at)
        """,
    )


def _m005_canary_stages(db: Database) -> None:
    # A canary target remembers the colour its new revision went to; each stage of a canary
    # run is a row: its weight and bake, when it ran, how much bake time it used (so a restart
    # resumes with what was left), who held it, and the health and 5xx figures it saw.
    _run_script(
        db,
        """
        ALTER TABLE deployment_targets ADD COLUMN canary_colour TEXT;
        ALTER TABLE deployments ADD COLUMN old_colours_retired_at TEXT;
        CREATE TABLE rollout_stages (
            deployment_id TEXT NOT NULL REFERENCES deployments(id),
            position INTEGER NOT NULL,
            weight INTEGER NOT NULL,
            bake_s REAL NOT NULL,
            status TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            elapsed_s REAL NOT NULL DEFAULT 0,
            held_by TEXT,
            held_at TEXT,
            promoted_by TEXT,
            detail TEXT,
            figures TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (deployment_id, position)
        )
        """,
    )


def _m006_gates(db: Database) -> None:
    # The gates: environment locks; per run the break-glass and hotfix reasons, the end of
    # the wait timer, the backup, the migration tasks, the records written, the database
    # restore; per target the image digest checked before the run.
    _run_script(
        db,
        """
        CREATE TABLE locks (
            environment TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            reason TEXT,
            since TEXT NOT NULL,
            until TEXT
        );
        ALTER TABLE deployments ADD COLUMN break_glass TEXT;
        ALTER TABLE deployments ADD COLUMN skip_staging TEXT;
        ALTER TABLE deployments ADD COLUMN wait_until TEXT;
        ALTER TABLE deployments ADD COLUMN backup_id TEXT;
        ALTER TABLE deployments ADD COLUMN migrations TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE deployments ADD COLUMN records_written TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE deployments ADD COLUMN restore TEXT;
        ALTER TABLE deployment_targets ADD COLUMN image_digest TEXT
        """,
    )


def _m007_seen_requests_open_requests_and_card_views(db: Database) -> None:
    # seen_requests: signatures (HTTP) and envelope ids (Socket Mode) of requests already
    # handled, until Slack would refuse them as stale, so a replay is acknowledged, not redone.
    # open_requests: requests acknowledged and not yet finished; one left at start-up was cut
    # short by a crash. deployment_cards: what each deploy card last showed (a digest of its
    # text and blocks, and the run's updated_at drawn), so cards converge on the store.
    _run_script(
        db,
        """
        CREATE TABLE seen_requests (
            key TEXT PRIMARY KEY,
            expires_at TEXT NOT NULL
        );
        CREATE INDEX seen_requests_expiry ON seen_requests(expires_at);
        CREATE TABLE open_requests (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            received_at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            channel_id TEXT,
            ref TEXT
        );
        CREATE TABLE deployment_cards (
            deployment_id TEXT PRIMARY KEY REFERENCES deployments(id),
            digest TEXT NOT NULL,
            drawn_version TEXT NOT NULL,
            shown_at TEXT NOT NULL
        );
        """,
    )


def _m008_rollbacks_undoing_migrations(db: Database) -> None:
    # A rollback run: the deploys it takes back that ran migrations (JSON: deployment id and
    # services), so its plan card warns the approvers that the database stays as they left it.
    _run_script(
        db,
        """
        ALTER TABLE deployments ADD COLUMN undoes_migrations TEXT NOT NULL DEFAULT '[]'
        """,
    )


def _m009_aborted_canary_stages(db: Database) -> None:
    # Who aborted a canary, on the stage it was aborted at: a Promote, Hold or Resume clicked
    # after it is refused, naming them.
    _run_script(db, "ALTER TABLE rollout_stages ADD COLUMN aborted_by TEXT")


def _m010_source_setbacks(db: Database) -> None:
    # A promotion: the versions of it that failed or were rolled back lately in the source
    # environment (JSON), so its plan card keeps warning the approvers until it ends.
    _run_script(db, "ALTER TABLE deployments ADD COLUMN source_setbacks TEXT NOT NULL DEFAULT '[]'")


def _m011_messages_that_name_people(db: Database) -> None:
    # A run's error and an event's detail as the sentence they were (JSON), beside their plain
    # text: the people they name are drawn as mentions whenever the card or thread shows them.
    _run_script(
        db,
        """
        ALTER TABLE deployments ADD COLUMN error_line TEXT;
        ALTER TABLE deployment_events ADD COLUMN detail_line TEXT
        """,
    )


def _m012_indexes_for_history(db: Database) -> None:
    # Issue 17: `/deploy history` reads the newest runs (of an environment, or of all) in index
    # order and stops after a page, where it sorted the whole table; the source environment's
    # setbacks (on the plan card's path) and a war room's rollbacks search instead of scanning.
    # (environment, created_at, id) replaces (environment, created_at): same prefix, and the id
    # that breaks ties in the history's order.
    _run_script(
        db,
        """
        DROP INDEX deployments_env_created;
        CREATE INDEX deployments_env_created ON deployments(environment, created_at, id);
        CREATE INDEX deployments_created ON deployments(created_at, id);
        CREATE INDEX deployments_env_finished ON deployments(environment, finished_at);
        CREATE INDEX deployments_kind_channel ON deployments(kind, channel_id, created_at)
        """,
    )


def _m013_watches(db: Database) -> None:
    _run_script(
        db,
        """
        CREATE TABLE watches (
            id TEXT PRIMARY KEY,
            deployment_id TEXT NOT NULL REFERENCES deployments(id),
            service TEXT NOT NULL,
            environment TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ends_at TEXT NOT NULL,
            next_check_at TEXT NOT NULL,
            state TEXT NOT NULL,
            alerted TEXT NOT NULL DEFAULT '',
            missing_said TEXT NOT NULL DEFAULT '',
            figures TEXT,
            failure TEXT,
            outcome TEXT,
            UNIQUE (deployment_id, service)
        );
        CREATE INDEX watches_state ON watches(state);
        CREATE TABLE watch_alerts (
            watch_id TEXT NOT NULL REFERENCES watches(id),
            seq INTEGER NOT NULL,
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            signals TEXT NOT NULL,
            figures TEXT NOT NULL,
            posted_at TEXT,
            PRIMARY KEY (watch_id, seq)
        )
        """,
    )


def _m014_indexes_for_delivery_figures(db: Database) -> None:
    # Issue 18: `/deploy stats` reads a period's deploys (and rollbacks) of an environment from
    # one index that holds all it reads of them; looks up when a promoted version of a service
    # first succeeded in the source environment by service and version; and finds the period's
    # rollbacks' targets, watch breaches, incidents and the watches an incident fell in from
    # their own keys and times, not by reading every deploy's.
    _run_script(
        db,
        """
        CREATE INDEX deployments_env_kind_state_finished
            ON deployments(environment, kind, state, finished_at, created_at, id);
        CREATE INDEX deployment_targets_service_version
            ON deployment_targets(service, target_version, status, deployment_id);
        CREATE INDEX deployment_targets_reverted_by
            ON deployment_targets(reverted_by) WHERE reverted_by IS NOT NULL;
        CREATE INDEX watch_alerts_kind_at ON watch_alerts(kind, at);
        CREATE INDEX watches_service_ends ON watches(service, ends_at);
        CREATE INDEX incidents_opened ON incidents(opened_at)
        """,
    )


def _m015_home_viewers(db: Database) -> None:
    _run_script(
        db,
        """
        CREATE TABLE home_viewers (
            user_id TEXT PRIMARY KEY,
            opened_at TEXT NOT NULL,
            digest TEXT,
            published_at TEXT
        )
        """,
    )


def _m016_watch_baselines(db: Database) -> None:
    # Issue 18: each watch keeps the minutes of the hour before its deploy (read from CloudWatch
    # once, JSON: signal -> values) and the signals it warned of as regressed (once each).
    _run_script(
        db,
        """
        ALTER TABLE watches ADD COLUMN baseline TEXT;
        ALTER TABLE watches ADD COLUMN regressed TEXT NOT NULL DEFAULT ''
        """,
    )


def _m017_watch_alert_posts(db: Database) -> None:
    # Issue 18: an alert's post is marked tried before Slack is asked, and its message's ts kept
    # once Slack took it: a post tried and never confirmed (the bot died waiting) is looked for
    # in the channel by its metadata before it is posted again.
    _run_script(
        db,
        """
        ALTER TABLE watch_alerts ADD COLUMN tried_at TEXT;
        ALTER TABLE watch_alerts ADD COLUMN ts TEXT
        """,
    )


def _m018_incident_services(db: Database) -> None:
    # Issue 18: the services an incident was declared for in the declare form (JSON list of
    # configured service names); they freeze deploys as the services its summary names do.
    _run_script(db, "ALTER TABLE incidents ADD COLUMN services TEXT NOT NULL DEFAULT '[]'")


def _m019_leases_and_claims(db: Database) -> None:
    # Issue 20, replicas: `leases` names who owns what for how long (a run, `run:<id>`; a
    # replica's presence, `replica:<id>`), with a generation bumped by every change of owner
    # that fences the writes of a former one. `timer_claims`: each firing of timed work (timer
    # key, due time) claimed by one replica, until done or its claim lapses. `open_requests`
    # say which replica took them, so only that one (or a replica that outlived it) finishes
    # them after a crash. Times are ISO text in UTC, like every due time.
    _run_script(
        db,
        """
        CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            generation INTEGER NOT NULL,
            expires_at TEXT NOT NULL
        );
        CREATE INDEX leases_expiry ON leases(expires_at);
        CREATE TABLE timer_claims (
            key TEXT NOT NULL,
            due_at TEXT NOT NULL,
            owner TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            done INTEGER NOT NULL DEFAULT 0,
            claimed_at TEXT NOT NULL,
            PRIMARY KEY (key, due_at)
        );
        CREATE INDEX timer_claims_claimed ON timer_claims(claimed_at);
        ALTER TABLE open_requests ADD COLUMN replica TEXT
        """,
    )


Migration = Callable[[Database], None]

MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "deployments, approvals, events, audit log", _m001_deployments),
    (2, "incidents, their roles and timeline", _m002_incidents),
    (3, "raw user IDs in commander events", _m003_raw_commander_ids),
    (4, "rollback runs and rollback windows", _m004_rollbacks),
    (5, "canary stages and colours", _m005_canary_stages),
    (6, "locks, and the gates of a run", _m006_gates),
    (
        7,
        "seen and open requests, what each deploy card shows",
        _m007_seen_requests_open_requests_and_card_views,
    ),
    (
        8,
        "rollbacks that take back deploys which ran migrations",
        _m008_rollbacks_undoing_migrations,
    ),
    (9, "who aborted a canary", _m009_aborted_canary_stages),
    (10, "what of a promotion went wrong lately in its source", _m010_source_setbacks),
    (11, "errors and event details that name people", _m011_messages_that_name_people),
    (12, "indexes for history, setbacks and war-room rollbacks", _m012_indexes_for_history),
    (13, "post-deploy watches and their alerts", _m013_watches),
    (14, "indexes for delivery figures", _m014_indexes_for_delivery_figures),
    (15, "who opened the App Home, and what it last showed them", _m015_home_viewers),
    (16, "what a watch compares with, and the regressions it warned of", _m016_watch_baselines),
    (17, "watch alerts' posts tried, and where Slack took them", _m017_watch_alert_posts),
    (18, "the services an incident was declared for", _m018_incident_services),
    (19, "leases of runs and replicas, claims of timed work", _m019_leases_and_claims),
]


def apply_migrations(db: Database) -> list[int]:
    """Apply each migration not yet recorded, each in one transaction. Returns those applied."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in db.execute("SELECT version FROM schema_migrations").fetchall()}
    applied = []
    for version, name, migrate in sorted(MIGRATIONS, key=lambda m: m[0]):
        if version in done:
            continue
        with db.atomic():
            migrate(db)
            db.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                [version, name, datetime.now(UTC).isoformat()],
            )
        applied.append(version)
    return applied
