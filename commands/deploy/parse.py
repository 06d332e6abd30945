"""`/deploy` text -> typed requests, and its usage text. No Slack types here."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from commands.parsing import VERSION, Help, service_list, split_words
from commands.usage import Choices, Syntax, Usage
from pipeline.kernel.config import Config
from pipeline.kernel.errors import BadVersion, UsageError, options
from pipeline.kernel.text import Line, line

HISTORY_LIMIT = 10


@dataclass(frozen=True)
class DeployRequest:
    environment: str
    services: tuple[str, ...]
    version: str | None
    dry_run: bool = False
    """`--dry-run`: show the plan and every check; change nothing."""
    skip_staging: str | None = None
    """`--skip-staging "<reason>"`: a hotfix that skips the promotion health check."""
    break_glass: str | None = None
    """`--break-glass "<reason>"`: deploy outside the windows or a freeze, with one more
    approval than usual."""


@dataclass(frozen=True)
class StatusRequest:
    deployment_id: str
    as_json: bool = False
    """`--json`: the whole deployment record, not the short summary."""


@dataclass(frozen=True)
class HistoryRequest:
    environment: str | None


@dataclass(frozen=True)
class StatsRequest:
    """`/deploy stats [environment] [7d|30d|90d] [service]`: delivery figures."""

    environment: str
    days: int
    service: str | None = None


DeployCommand = Help | DeployRequest | StatusRequest | HistoryRequest | StatsRequest

# The periods `/deploy stats` reads back over, in days, by the word that asks for each.
STATS_PERIODS = {"7d": 7, "30d": 30, "90d": 90}
STATS_DEFAULT_PERIOD = "30d"
_PERIOD_LIKE = re.compile(r"^\d+[a-z]*$")

_REASON_FLAGS = ("--skip-staging", "--break-glass")


# A version is deployed as the image tag, and a tag (Docker, OCI distribution spec) is
# `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`: ASCII, at most 128 characters.
MAX_TAG_LENGTH = 128
IMAGE_TAG = re.compile(rf"[A-Za-z0-9_][A-Za-z0-9_.-]{{0,{MAX_TAG_LENGTH - 1}}}", re.ASCII)
# How many of the characters that are not ASCII a reply names.
_NAMED_CHARACTERS = 3


def usage(config: Config) -> Usage:
    """What `/deploy help` shows; every subcommand is listed here and in docs/commands.md."""
    return Usage(
        forms=(
            Syntax(
                "/deploy <environment> <service[,service...]|all> [version]",
                Line.literal(
                    "plan a deploy and ask for approval. Without a version, an environment with "
                    "`promote_from` takes the versions running there."
                ),
            ),
            Syntax(
                "/deploy <environment> <services|all> [version] --dry-run",
                Line.literal("show the plan and every check, change nothing"),
            ),
            Syntax(
                '/deploy <environment> <services|all> <version> --skip-staging "<reason>"',
                Line.literal("a hotfix that skips the promotion health check"),
            ),
            Syntax(
                '/deploy <environment> <services|all> [version] --break-glass "<reason>"',
                Line.literal(
                    "deploy outside the windows or during a freeze, with one more approval than "
                    "usual"
                ),
            ),
            Syntax(
                "/deploy status <deployment-id> [--json]",
                Line.literal(
                    "a short summary of that deployment: state, who, when, each service's "
                    "versions and outcome, its rollback window; `--json` the whole record"
                ),
            ),
            Syntax(
                "/deploy status <environment>",
                Line.literal("its lock, window, freeze and runs in progress"),
            ),
            Syntax("/deploy history [environment]", Line.literal("the last 10 deployments")),
            Syntax(
                "/deploy stats [environment] [7d|30d|90d] [service]",
                Line.literal(
                    "delivery figures: deploys, lead time, time in the source environment, "
                    "change failure rate, time to restore (production and 30 days unless named)"
                ),
            ),
            Syntax(
                "/deploy lock <environment> [reason] [for <duration>]",
                Line.literal("only you may deploy there"),
            ),
            Syntax(
                "/deploy unlock <environment>",
                Line.literal("end your lock (approvers may end anyone's)"),
            ),
            Syntax(
                "/deploy restore-db <deployment-id>",
                Line.literal(
                    "restore that deploy's database snapshot to a NEW instance, after the "
                    "environment's approvals"
                ),
            ),
            Syntax("/deploy help", Line.literal("this message")),
        ),
        choices=(
            Choices("Environments", tuple(config.environments)),
            Choices("Services", tuple(config.services)),
        ),
        notes=(Line.literal("Versions look like `v1.2.3` or `v2.0.0-rc1`."),),
    )


def parse_deploy(text: str, config: Config) -> DeployCommand:
    """Turn `/deploy` text about deploys into a typed request (the gates' requests are read by
    `commands.gates.parse` first). Raises UsageError naming the valid choices."""
    words = split_words(text)
    if not words or words[0].lower() == "help":
        if len(words) > 1:
            raise UsageError(
                "`help` takes nothing after it; got `{extra}`. Type `/deploy help` for the usage.",
                extra=" ".join(words[1:]),
            )
        return Help()
    head = words[0].lower()
    if head == "status":
        as_json = any(w.lower() == "--json" for w in words[1:])
        named = [w for w in words[1:] if w.lower() != "--json"]
        if len(named) != 1:
            raise UsageError(
                "Say which deployment or environment: `/deploy status <deployment-id> [--json]` "
                "or `/deploy status <environment>`. `/deploy history` lists recent ids."
            )
        if as_json and named[0].lower() in config.environments:
            raise UsageError(
                "`--json` shows a deployment's record; `{env}` is an environment. Type "
                "`/deploy status {env}` for it, or `/deploy status <deployment-id> --json`.",
                env=named[0].lower(),
            )
        return StatusRequest(named[0], as_json=as_json)
    if head == "history":
        if len(words) > 2:
            raise UsageError(
                "`/deploy history` takes at most an environment name: "
                f"{options(config.environments)}."
            )
        return HistoryRequest(config.environment(words[1]).name if len(words) == 2 else None)
    if head == "stats":
        return _stats(words[1:], config)
    return _deploy(words, config)


def _stats(words: list[str], config: Config) -> StatsRequest:
    """The environment, period and service of `/deploy stats`, in any order, each at most
    once; production (the incidents' environment) and 30 days unless named."""
    found: dict[str, str] = {}
    for word in words:
        name = word.lower()
        if name in config.environments:
            kind = "environment"
        elif name in STATS_PERIODS:
            kind = "period"
        elif name in config.services:
            kind = "service"
        elif _PERIOD_LIKE.match(name):
            raise UsageError(
                "`{word}` is not a period of `/deploy stats`; try one of {periods}.",
                word=word,
                periods=", ".join(f"`{p}`" for p in STATS_PERIODS),
            )
        else:
            raise UsageError(
                "`/deploy stats` takes an environment ({envs}), a period ({periods}) and a "
                "service ({services}); `{word}` is none of them.",
                envs=options(config.environments),
                periods=", ".join(f"`{p}`" for p in STATS_PERIODS),
                services=options(config.services),
                word=word,
            )
        if kind in found:
            raise UsageError(
                "`/deploy stats` takes one {kind}; got `{first}` and `{second}`.",
                kind=kind,
                first=found[kind],
                second=name,
            )
        found[kind] = name
    environment = found.get("environment") or _production(config)
    period = found.get("period", STATS_DEFAULT_PERIOD)
    return StatsRequest(environment, STATS_PERIODS[period], found.get("service"))


def _production(config: Config) -> str:
    """The environment figures are about unless one is named: the incidents' environment, else
    one called `production`."""
    name = config.incidents.environment or "production"
    if name not in config.environments:
        raise UsageError(
            "Say which environment: `/deploy stats <environment>`. Environments: {envs}.",
            envs=options(config.environments),
        )
    return name


def _deploy(words: list[str], config: Config) -> DeployRequest:
    flags: dict[str, str | None] = {}
    plain: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("--"):
            flag = word.lower()
            if flag == "--dry-run":
                flags[flag] = None
            elif flag in _REASON_FLAGS:
                if i + 1 >= len(words) or words[i + 1].startswith("--") or not words[i + 1].strip():
                    raise UsageError(
                        '`{flag}` needs a reason: `{flag} "what is on fire"`.', flag=flag
                    )
                flags[flag] = words[i + 1]
                i += 1
            else:
                raise UsageError(
                    "`{flag}` is not a flag of `/deploy`. Flags: `--dry-run`, "
                    '`--skip-staging "<reason>"`, `--break-glass "<reason>"`.',
                    flag=word,
                )
        else:
            plain.append(word)
        i += 1
    env = config.environment(plain[0])
    if len(plain) < 2:
        raise UsageError(
            f"Say which services to deploy to `{env.name}`: a name, a comma-separated list, "
            f"or `all`. Services: {options(config.services)}."
        )
    if len(plain) > 3:
        raise UsageError(
            "Unexpected extra words: `{extra}`. "
            "The form is `/deploy <environment> <services|all> [version]`.",
            extra=" ".join(plain[3:]),
        )
    services = service_list(plain[1], config) or tuple(config.services)
    version = plain[2] if len(plain) == 3 else None
    if version is not None:
        problem = version_problem(version)
        if problem is not None:
            raise problem
    skip = flags.get("--skip-staging")
    if "--skip-staging" in flags and env.promote_from is None:
        raise UsageError(
            "`{env}` does not promote from another environment, so there is no staging to "
            "skip; drop `--skip-staging`.",
            env=env.name,
        )
    if version is None and (env.promote_from is None or skip is not None):
        raise UsageError(
            "`{env}` {why}, so name a version: `/deploy {env} {services} v1.2.3`. Versions "
            "look like `v1.2.3` or `v2.0.0-rc1`.",
            env=env.name,
            why="does not promote from another environment"
            if env.promote_from is None
            else "is skipping staging",
            services=plain[1],
        )
    return DeployRequest(
        env.name,
        services,
        version,
        dry_run="--dry-run" in flags,
        skip_staging=skip,
        break_glass=flags.get("--break-glass"),
    )


def version_problem(text: str) -> BadVersion | None:
    """Why `text` cannot be deployed as a version (an image tag), or None when it can."""
    foreign = list(dict.fromkeys(c for c in text if not c.isascii()))
    if foreign:
        named = ", ".join(
            f"`{c}` ({unicodedata.name(c, 'unnamed')})" for c in foreign[:_NAMED_CHARACTERS]
        )
        extra = len(foreign) - _NAMED_CHARACTERS
        more = f" and {extra} more" if extra > 0 else ""
        return BadVersion(
            text,
            line(
                "it has characters that are not ASCII ({named}{more}); an image tag is ASCII "
                "letters, digits, `_`, `.` and `-`",
                named=named,
                more=more,
            ),
        )
    if len(text) > MAX_TAG_LENGTH:
        return BadVersion(
            text,
            line(
                "it is {length} characters long, and an image tag is at most {limit}",
                length=len(text),
                limit=MAX_TAG_LENGTH,
            ),
        )
    if not VERSION.match(text) or not IMAGE_TAG.fullmatch(text):
        return BadVersion(text)
    return None
