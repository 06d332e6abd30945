"""The `chatops-bot` command: `serve` runs the bot, `check-config` validates a config file,
`backup` copies the database, `migrate-db` copies it into PostgreSQL, `iam-policy` prints the
IAM policy a config needs and `doctor` checks the setup against Slack and AWS."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path

from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from bot import doctor
from bot.doctor import AwsReaders
from bot.logs import configure_logging
from bot.server import RUNTIME, build_web_app
from bot.settings import (
    Settings,
    SettingsError,
    config_path_from_env,
    database_from_env,
    db_path_from_env,
    load_settings,
    slack_from_env,
    use_env_file,
)
from bot.slack import SlackGateway
from bot.socket_mode import OnceSocketModeHandler
from pipeline.aws import BotoEcs
from pipeline.aws.calls import AwsClients
from pipeline.aws.elbv2 import BotoLoadBalancer
from pipeline.aws.gates import BotoSnapshots
from pipeline.aws.iam import iam_policy
from pipeline.aws.identity import BotoIdentity
from pipeline.kernel.clock import SystemClock
from pipeline.kernel.config import Config, ConfigError, format_duration, load_config
from pipeline.kernel.errors import ChatOpsError, UnknownGroup
from pipeline.kernel.text import counted
from store.backends.urls import is_postgres_url, redact
from store.backup import BackupError, back_up

log = logging.getLogger("chatops")

EXIT_BAD_CONFIG = 2
EXIT_BACKUP_FAILED = 1
EXIT_DOCTOR_FOUND = 1
EXIT_MIGRATE_FAILED = 1
CHECK_TIMEOUT_S = 10  # each Slack call of check-config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chatops-bot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the bot (HTTP mode, or Socket Mode with SLACK_APP_TOKEN)")
    check = sub.add_parser("check-config", help="validate a config file and print a summary")
    check.add_argument(
        "path", nargs="?", type=Path, help="default: $CHATOPS_CONFIG or chatops.toml"
    )
    backup = sub.add_parser(
        "backup", help="copy the database to PATH while the bot runs (see docs/operations.md)"
    )
    backup.add_argument("path", type=Path, help="the new file; must not exist")
    transfer = sub.add_parser(
        "migrate-db",
        help="copy the SQLite database (CHATOPS_DB) into an empty PostgreSQL database "
        "(see docs/high-availability.md)",
    )
    transfer.add_argument(
        "--to",
        required=True,
        metavar="postgresql://…",
        help="the PostgreSQL database's URL; it is migrated, and must hold no rows",
    )
    policy = sub.add_parser(
        "iam-policy", help="print the least-privilege IAM policy the config needs (JSON)"
    )
    policy.add_argument(
        "--config", type=Path, help="default: $CHATOPS_CONFIG or chatops.toml", dest="path"
    )
    policy.add_argument(
        "--account", default="*", help="AWS account id for the ARNs (default: any, `*`)"
    )
    doctor = sub.add_parser(
        "doctor", help="check the config against what the Slack and AWS credentials give"
    )
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.add_argument("--no-aws", action="store_true", help="skip the AWS checks")
    doctor.add_argument(
        "--env-file",
        type=Path,
        help="read the settings from this file first (the sandbox writes .sandbox/doctor.env)",
    )
    args = parser.parse_args(argv)
    if args.command == "doctor":
        if args.env_file is not None:
            try:
                use_env_file(args.env_file)
            except SettingsError as exc:
                _fail(exc.lines)
                return EXIT_BAD_CONFIG
        return run_doctor(as_json=args.json, check_aws=not args.no_aws)
    if args.command == "iam-policy":
        return print_iam_policy(args.path, account=args.account)
    if args.command == "check-config":
        return check_config(args.path)
    if args.command == "backup":
        return back_up_database(args.path)
    if args.command == "migrate-db":
        return migrate_database(args.to)
    return serve()


def check_config(path: Path | None) -> int:
    if path is None:
        path = config_path_from_env()
    try:
        config = load_config(path)
    except ConfigError as exc:
        _fail_config(exc)
        return EXIT_BAD_CONFIG
    print(describe(config, path))
    notes, warnings = check_user_groups(config)
    for line in notes:
        print(line)
    for line in warnings:
        print(f"warning: {line}", file=sys.stderr)
    return 0


def run_doctor(*, as_json: bool, check_aws: bool) -> int:
    """Run every check; exit 1 when one fails."""
    slack = slack_from_env()
    client = None
    if slack is not None:
        token, url = slack
        client = AsyncWebClient(
            token=token.get_secret_value(), base_url=url, timeout=CHECK_TIMEOUT_S
        )
    clients = AwsClients()
    aws = AwsReaders(
        ecs=BotoEcs(),
        load_balancer=BotoLoadBalancer(clients),
        snapshots=BotoSnapshots(clients),
        identity=BotoIdentity(clients),
    )
    findings = asyncio.run(
        doctor.diagnose(
            config_path=config_path_from_env(),
            db_path=database_from_env(),
            slack=client,
            aws=aws if check_aws else None,
        )
    )
    print(doctor.as_json(findings) if as_json else doctor.as_text(findings))
    return EXIT_DOCTOR_FOUND if doctor.failed(findings) else 0


def print_iam_policy(path: Path | None, *, account: str) -> int:
    path = path or config_path_from_env()
    try:
        config = load_config(path)
    except ConfigError as exc:
        _fail_config(exc)
        return EXIT_BAD_CONFIG
    print(json.dumps(iam_policy(config, account=account), indent=2))
    return 0


def back_up_database(target: Path) -> int:
    source = db_path_from_env()
    try:
        copy = asyncio.run(back_up(source, target))
    except BackupError as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return EXIT_BACKUP_FAILED
    print(
        f"{source} -> {copy.path}: {copy.size_bytes} bytes, schema version "
        f"{copy.schema_version}, {counted(copy.deployments, 'deployment')}, "
        f"{counted(copy.incidents, 'incident')}, {counted(copy.audit_rows, 'audit row')}; "
        "integrity check ok"
    )
    return 0


def migrate_database(url: str) -> int:
    """Copy CHATOPS_DB into the PostgreSQL database at `url`; print each table's row count."""
    source = db_path_from_env()
    if not is_postgres_url(url):
        print(f"migrate-db: --to must be a postgresql:// URL, not {redact(url)}.", file=sys.stderr)
        return EXIT_BAD_CONFIG
    from store.transfer import TransferError, copy_to_postgres  # psycopg: only when used

    try:
        copied = asyncio.run(copy_to_postgres(source, url))
    except TransferError as exc:
        print(f"migrate-db failed: {exc}", file=sys.stderr)
        return EXIT_MIGRATE_FAILED
    width = max((len(t) for t in copied.counts), default=0)
    print(f"{source} -> {copied.target} (schema version {copied.schema_version}):")
    for table, count in copied.counts.items():
        print(f"  {table:<{width}}  {counted(count, 'row')}")
    total = sum(copied.counts.values())
    print(
        f"{counted(total, 'row')} in {counted(len(copied.counts), 'table')} copied in one "
        "transaction; each table's count checked. Set CHATOPS_DATABASE_URL to it and start "
        "the bot."
    )
    return 0


def _fail_config(exc: ConfigError) -> None:
    print(f"{exc.path}: invalid config", file=sys.stderr)
    for line in exc.problems:
        print(f"  {line}", file=sys.stderr)


def check_user_groups(config: Config) -> tuple[list[str], list[str]]:
    """Ask Slack (when a bot token is set) about each user group the config names: notes for
    stdout, and one warning per group Slack does not have. Never raises."""
    where = config.user_groups()
    if not where:
        return [], []
    slack = slack_from_env()
    if slack is None:
        return [
            f"user groups {', '.join(where)}: not checked against Slack (set SLACK_BOT_TOKEN "
            "to check them)"
        ], []
    token, url = slack
    client = AsyncWebClient(
        token=token.get_secret_value(),
        base_url=url,
        timeout=CHECK_TIMEOUT_S,
    )
    try:
        unknown = asyncio.run(_unknown_groups(SlackGateway(client), list(where)))
    except ChatOpsError as exc:
        return [f"user groups: not checked. {exc.user_message}"], []
    found = [g for g in where if g not in unknown]
    notes = [f"user groups: {', '.join(found)} found in Slack"] if found else []
    return notes, [
        f"Slack has no user group {g} (named in {', '.join(where[g])}): no one acts through "
        "it. Fix the ID, or create the group in Slack."
        for g in unknown
    ]


async def _unknown_groups(slack: SlackGateway, groups: list[str]) -> list[str]:
    unknown = []
    for group in groups:
        try:
            await slack.members_of(group)
        except UnknownGroup:
            unknown.append(group)
    return unknown


def _gates(config: Config, name: str) -> list[str]:
    """The gates an environment has, in a few words each (check-config's summary)."""
    env = config.environment(name)
    gates = []
    if env.schedule.windows:
        gates.append(f"windows {', '.join(env.schedule.windows)} ({env.schedule.timezone})")
    if env.schedule.freezes:
        gates.append(counted(len(env.schedule.freezes), "freeze"))
    if env.wait_s:
        gates.append(f"wait {format_duration(env.wait_s)}")
    if env.groups:
        gates.append("order " + " -> ".join("[" + ", ".join(g) + "]" for g in env.groups))
    if env.database is not None:
        gates.append(f"snapshot of {env.database.instance} before migrations")
    migrating = [s.name for s in config.services.values() if s.migration is not None]
    if migrating:
        gates.append(f"migrations: {', '.join(migrating)}")
    if env.records is not None:
        gates.append(f"records to s3://{env.records.bucket}/{env.records.prefix}")
    if not env.ecr_check:
        gates.append("ECR check off")
    if env.promote_from is not None:
        gates.append(
            f"{'refuses' if env.refuse_failed_in_source else 'warns of'} versions that failed "
            f"or were rolled back in {env.promote_from} in the last 24h"
        )
    return gates


def describe(config: Config, path: Path) -> str:
    lines = [f"{path}: OK", f"{counted(len(config.environments), 'environment')}:"]
    for env in config.environments.values():
        extra = f", promotes from {env.promote_from}" if env.promote_from else ""
        if env.rollback_window_s:
            extra += f", rollback window {format_duration(env.rollback_window_s)}"
        lines.append(
            f"  {env.name}: cluster {env.cluster} ({env.region}), "
            f"{counted(env.required_approvals, 'approval')}, health {env.health.retries} x "
            f"{format_duration(env.health.interval_s)}{extra}"
        )
        gates = _gates(config, env.name)
        if gates:
            lines.append(f"    gates: {'; '.join(gates)}")
    lines.append(f"{counted(len(config.services), 'service')}: " + ", ".join(config.services))
    sev = config.incidents.severities
    lines.append(
        "incident severities: "
        + ", ".join(
            f"{k} every {format_duration(v.update_every_s)}" if v.update_every_s else f"{k} none"
            for k, v in sev.items()
        )
    )
    return "\n".join(lines)


def _startup_problems(settings: Settings) -> list[str]:
    if settings.socket_mode or settings.slack_signing_secret is not None:
        return []
    return [
        "SLACK_SIGNING_SECRET: is not set. HTTP mode needs it to verify that requests come "
        "from Slack (Basic Information > Signing Secret); or set SLACK_APP_TOKEN to use "
        "Socket Mode instead."
    ]


def serve() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        lines = list(exc.lines)
        if any(line.startswith("SLACK_BOT_TOKEN") for line in lines):
            lines.append(
                "SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN (Socket Mode): set one of "
                "them too. See README.md, 'Install the Slack app'."
            )
        _fail(lines)
        return EXIT_BAD_CONFIG
    problems = _startup_problems(settings)
    if problems:
        _fail(problems)
        return EXIT_BAD_CONFIG
    try:
        config = load_config(settings.config_path)
    except ConfigError as exc:
        _fail([f"CHATOPS_CONFIG ({exc.path}): {p}" for p in exc.problems])
        return EXIT_BAD_CONFIG
    configure_logging(settings.log_level, fmt=settings.log_format, secrets=settings.secret_values())
    asyncio.run(run_server(settings, config))
    return 0


def _fail(lines: list[str]) -> None:
    print("chatops-bot cannot start:", file=sys.stderr)
    for line in lines:
        print(f"  {line}", file=sys.stderr)


async def run_server(
    settings: Settings, config: Config, *, stop: asyncio.Event | None = None
) -> None:
    """Serve until SIGTERM/SIGINT (or `stop` is set), then shut down cleanly."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    web_app = build_web_app(settings, config, clock=SystemClock(), ecs=BotoEcs())
    runner = web.AppRunner(web_app, handle_signals=False)
    await runner.setup()
    handler: OnceSocketModeHandler | None = None
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        runtime = web_app[RUNTIME]
        if settings.slack_app_token is not None:
            handler = OnceSocketModeHandler(
                runtime.app,
                settings.slack_app_token.get_secret_value(),
                web_client=runtime.client,
                seen=runtime.seen,
                acked=runtime.meter.acked,
            )
            await handler.connect_async()  # type: ignore[no-untyped-call]
            log.info("connected to Slack in Socket Mode; /healthz on port %d", settings.port)
        else:
            log.info("serving /slack/events and /healthz on port %d", settings.port)
        if not settings.metrics_apart:
            log.info("serving /metrics on port %d", settings.port)
        await stop.wait()
        log.info("shutting down")
    finally:
        if handler is not None:
            await handler.close_async()  # type: ignore[no-untyped-call]
        await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
