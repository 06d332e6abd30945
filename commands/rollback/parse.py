"""`/rollback` text -> a typed request, and its usage text. No Slack types here.

`/rollback <environment> <service[,service...]|all> [version] [reason...]`, with `-y` anywhere
to skip the confirmation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from commands.parsing import VERSION, Help, service_list
from commands.usage import Choices, Rule, Syntax, Usage
from pipeline.kernel.config import Config
from pipeline.kernel.errors import BadVersion, UsageError, options
from pipeline.kernel.text import Line

CONFIRM_FLAGS = ("-y", "--yes")
# A word that starts like a version is read as one (and must then be a valid one), so a typo
# such as `v1.2` is refused rather than taken for the start of the reason.
_LOOKS_LIKE_VERSION = re.compile(r"^v[0-9]", re.ASCII)


@dataclass(frozen=True)
class RollbackRequest:
    environment: str
    services: tuple[str, ...] | None
    """None: every service the environment's last deployment changed (`all`)."""
    version: str | None
    reason: str | None
    confirmed: bool
    """`-y`: no confirmation question."""


def usage(config: Config) -> Usage:
    """What `/rollback help` shows; every form is listed here and in docs/commands.md."""
    return Usage(
        forms=(
            Syntax(
                "/rollback <environment> <service[,service...]|all> [version] [reason...]",
                Line.literal(
                    "take services back to the version they ran before their last successful "
                    "deploy, or to a named version that ran there. `all`: every service the last "
                    "deploy changed."
                ),
            ),
            Rule(
                Line.literal(
                    "Add `-y` anywhere to skip the question and start at once, unless a deploy it "
                    "takes back ran migrations: the database does not go back with the code, so "
                    "you are always asked then."
                )
            ),
            Rule(
                Line.literal(
                    "Inside a deploy's rollback window no approval is needed; after it, a "
                    "rollback is a deploy of the older version and needs the environment's "
                    "approvals."
                )
            ),
            Syntax("/rollback help", Line.literal("this message")),
        ),
        choices=(
            Choices("Environments", tuple(sorted(config.environments))),
            Choices("Services", tuple(sorted(config.services))),
        ),
    )


def parse_rollback(text: str, config: Config) -> Help | RollbackRequest:
    """Turn `/rollback` text into a request. Raises UsageError naming the valid choices."""
    words = text.split()
    confirmed = any(w.lower() in CONFIRM_FLAGS for w in words)
    words = [w for w in words if w.lower() not in CONFIRM_FLAGS]
    if not words or words[0].lower() == "help":
        return Help()
    env = config.environment(words[0])
    if len(words) < 2:
        raise UsageError(
            "Say which services to roll back in `{env}`: a name, a comma-separated list, or "
            "`all`. Services: {services}.",
            env=env.name,
            services=options(config.services),
        )
    services = service_list(words[1], config)
    rest = words[2:]
    version = None
    if rest and _LOOKS_LIKE_VERSION.match(rest[0]):
        if not VERSION.match(rest[0]):
            raise BadVersion(rest[0])
        version, rest = rest[0], rest[1:]
    reason = " ".join(rest) or None
    return RollbackRequest(env.name, services, version, reason, confirmed)
