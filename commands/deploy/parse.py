"""`/deploy` text -> typed requests, and its usage text. No Slack types here."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from pipeline.kernel.config import Config
from pipeline.kernel.errors import BadVersion, UsageError, options
from pipeline.kernel.text import line

HISTORY_LIMIT = 10


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class DeployRequest:
    environment: str
    services: tuple[str, ...]
    version: str | None


@dataclass(frozen=True)
class StatusRequest:
    deployment_id: str


@dataclass(frozen=True)
class HistoryRequest:
    environment: str | None


DeployCommand = Help | DeployRequest | StatusRequest | HistoryRequest


# ASCII only: `\d` would also accept full-width and Arabic-Indic digits, which no image tag has.
VERSION = re.compile(r"^v[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z][0-9A-Za-z.-]*)?$", re.ASCII)
# A version is deployed as the image tag, and a tag (Docker, OCI distribution spec) is
# `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`: ASCII, at most 128 characters.
MAX_TAG_LENGTH = 128
IMAGE_TAG = re.compile(rf"[A-Za-z0-9_][A-Za-z0-9_.-]{{0,{MAX_TAG_LENGTH - 1}}}", re.ASCII)
# How many of the characters that are not ASCII a reply names.
_NAMED_CHARACTERS = 3


def usage(config: Config) -> str:
    """The `/deploy help` text; every subcommand is listed here and in docs/commands.md."""
    envs = ", ".join(f"`{e}`" for e in config.environments)
    svcs = ", ".join(f"`{s}`" for s in config.services)
    return (
        "*Usage*\n"
        "• `/deploy <environment> <service[,service...]|all> [version]`: plan a deploy and ask "
        "for approval. Without a version, an environment with `promote_from` takes the versions "
        "running there.\n"
        "• `/deploy status <deployment-id>`: the deployment record\n"
        "• `/deploy history [environment]`: the last 10 deployments\n"
        "• `/deploy help`: this message\n"
        f"Environments: {envs}\nServices: {svcs}\n"
        "Versions look like `v1.2.3` or `v2.0.0-rc1`."
    )


def parse_deploy(text: str, config: Config) -> DeployCommand:
    """Turn `/deploy` text into a typed request. Raises UsageError naming the valid choices."""
    words = text.split()
    if not words or words[0].lower() == "help":
        if len(words) > 1:
            raise UsageError(
                "`help` takes nothing after it; got `{extra}`. Type `/deploy help` for the usage.",
                extra=" ".join(words[1:]),
            )
        return Help()
    head = words[0].lower()
    if head == "status":
        if len(words) != 2:
            raise UsageError(
                "Say which deployment: `/deploy status <deployment-id>`. "
                "`/deploy history` lists recent ids."
            )
        return StatusRequest(words[1])
    if head == "history":
        if len(words) > 2:
            raise UsageError(
                "`/deploy history` takes at most an environment name: "
                f"{options(config.environments)}."
            )
        return HistoryRequest(config.environment(words[1]).name if len(words) == 2 else None)
    env = config.environment(head)
    if len(words) < 2:
        raise UsageError(
            f"Say which services to deploy to `{env.name}`: a name, a comma-separated list, "
            f"or `all`. Services: {options(config.services)}."
        )
    if len(words) > 3:
        raise UsageError(
            "Unexpected extra words: `{extra}`. "
            "The form is `/deploy <environment> <services|all> [version]`.",
            extra=" ".join(words[3:]),
        )
    services = _parse_services(words[1], config)
    version = words[2] if len(words) == 3 else None
    if version is not None:
        problem = version_problem(version)
        if problem is not None:
            raise problem
    if version is None and env.promote_from is None:
        raise UsageError(
            "`{env}` does not promote from another environment, so name a version: "
            "`/deploy {env} {services} v1.2.3`. Versions look like `v1.2.3` or `v2.0.0-rc1`.",
            env=env.name,
            services=words[1],
        )
    return DeployRequest(env.name, services, version)


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


def _parse_services(word: str, config: Config) -> tuple[str, ...]:
    if word.lower() == "all":
        return tuple(config.services)
    names: list[str] = []
    for part in word.split(","):
        if not part:
            raise UsageError(
                "`{word}` has an empty service name; separate names with one comma. "
                "Services: {services}, or `all`.",
                word=word,
                services=options(config.services),
            )
        name = config.service(part).name
        if name not in names:
            names.append(name)
    return tuple(names)
