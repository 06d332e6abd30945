"""The `chatops-bot` command: `sandbox` runs the sandbox; every other subcommand is the bot's.

`chatops-bot sandbox` starts the real bot against a local Slack page, a local AWS and demo
services, on this machine only, and stops it all on Ctrl-C. `serve` and `check-config` go to
`bot.main` unchanged, so `serve` still refuses to start without Slack credentials.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bot.logs import configure_logging
from bot.main import main as bot_main
from sandbox.config import EXAMPLE, ExampleMissing
from sandbox.environment import pg_bin, real_credentials
from sandbox.people import APPROVERS, DEPLOYS, REQUESTER
from sandbox.postgres import DEBIAN_PACKAGE, find_binaries

if TYPE_CHECKING:
    from sandbox.stack import Options, Sandbox

EXIT_REFUSED = 2
MAX_REPLICAS = 5
SANDBOX_HELP = (
    "try the bot on this machine: a Slack-like page, a local AWS (moto) and demo services"
)


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: `sandbox` here, anything else handed to `bot.main.main`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["sandbox"]:
        return sandbox(args[1:])
    if args[:1] in (["-h"], ["--help"]):
        try:
            return bot_main(args)
        finally:
            print(f"\nand:\n  sandbox             {SANDBOX_HELP}")
    return bot_main(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatops-bot sandbox",
        description="Run the bot against a local Slack page, a local AWS and demo services. "
        "Nothing leaves this machine.",
    )
    parser.add_argument(
        "--port", type=int, default=3000, help="port of the page on 127.0.0.1 (0: any free one)"
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(".sandbox"),
        help="where the sandbox writes its config and database (default: .sandbox)",
    )
    parser.add_argument(
        "--example", type=Path, default=EXAMPLE, help="the config the sandbox is made from"
    )
    parser.add_argument(
        "--ignore-credentials",
        action="store_true",
        help="start even though Slack or AWS credentials are set (the sandbox never uses them)",
    )
    parser.add_argument("--log-level", default="WARNING", help="default: WARNING")
    parser.add_argument(
        "--replicas",
        type=_replica_count,
        default=1,
        metavar="N",
        help="run N replicas of the bot on a throwaway PostgreSQL (needs PostgreSQL installed); "
        "the page shows who owns each run and can kill a replica (default: 1, on SQLite)",
    )
    return parser


def _replica_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= count <= MAX_REPLICAS:
        raise argparse.ArgumentTypeError(f"from 1 to {MAX_REPLICAS}, not {count}")
    return count


def tour(url: str) -> list[str]:
    first, second = (p.name for p in APPROVERS)
    return [
        f"Open {url}",
        f"  1. In #{DEPLOYS.name}, as {REQUESTER.name}, type: /deploy production all",
        f"  2. Approve it as {first}, then switch to {second} and approve again.",
        "  3. Under Demo services, make auth-svc v1.4.0 unhealthy, type "
        "/deploy staging auth-svc v1.4.0 and watch the rollback.",
    ]


def sandbox(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    found = real_credentials()
    if found and not args.ignore_credentials:
        print("chatops-bot sandbox will not start next to real credentials:", file=sys.stderr)
        print(f"  set here: {', '.join(found)}", file=sys.stderr)
        print(
            "  The sandbox never uses them (it points Slack and AWS at this machine), but to be "
            "sure nothing real is touched, unset them, or pass --ignore-credentials "
            "(make run ARGS=--ignore-credentials).",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    if args.replicas > 1 and find_binaries(pg_bin()) is None:
        print(
            f"chatops-bot sandbox --replicas {args.replicas} needs PostgreSQL, and none is "
            "installed (no initdb and postgres under /usr/lib/postgresql/*/bin, on PATH or in "
            f"$PG_BIN). On Debian or Ubuntu: apt-get install {DEBIAN_PACKAGE}. "
            "Without --replicas the sandbox runs one bot on SQLite.",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    try:
        from sandbox.stack import Options, PostgresMissing  # moto loads only for the sandbox
    except ModuleNotFoundError as exc:
        print(
            f"chatops-bot sandbox needs {exc.name}: pip install 'chatops-bot[sandbox]' "
            "(make install does it).",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    configure_logging(args.log_level)
    options = Options(
        directory=args.dir,
        port=args.port,
        example=args.example,
        log_level=args.log_level,
        replicas=args.replicas,
    )
    try:
        asyncio.run(run(options))
    except (ExampleMissing, PostgresMissing) as exc:
        print(f"chatops-bot sandbox cannot start: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        print(
            f"chatops-bot sandbox cannot start: port {args.port} on 127.0.0.1 is taken. "
            "Pass --port N (--port 0 picks a free one).",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    return 0


async def run(options: Options, *, stop: asyncio.Event | None = None) -> None:
    """Serve the sandbox until SIGINT/SIGTERM (or `stop` is set), then stop it all."""
    from sandbox.stack import open_sandbox  # moto loads only for the sandbox

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with open_sandbox(options) as running:
            _announce(running)
            await stop.wait()
            print("\nStopping the sandbox…", flush=True)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    print("Sandbox stopped.", flush=True)


def _database(running: Sandbox) -> str:
    if running.database_url is None:
        return str(running.db_path)
    return "postgresql://" + running.database_url.rsplit("@", 1)[-1]  # no password shown


def _announce(running: Sandbox) -> None:
    replicas = []
    if running.replicas is not None:
        names = ", ".join(running.replicas.replicas)
        replicas = [
            f"Replicas: {names}, each logging to <name>.log in the sandbox directory. The "
            "page's Replicas panel shows who owns each run: Kill one mid-deploy and watch "
            "another take over.",
        ]
    lines = [
        "chatops-bot sandbox: a local Slack, a local AWS (moto) and demo services, on this "
        "machine only.",
        *tour(running.url),
        f"Config: {running.config_path}  Database: {_database(running)}",
        f"Metrics: {running.bot_url}/metrics",
        *replicas,
        "Ctrl-C stops everything.",
    ]
    print("\n".join(lines), flush=True)
