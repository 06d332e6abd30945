"""`/deploy` text about the gates people steer by hand -> typed requests: a look at an
environment, its lock and unlock, and a database restore. No Slack types here.

Every other `/deploy` text is a deploy's, read by `commands.deploy.parse`.
"""

from __future__ import annotations

from dataclasses import dataclass

from commands.parsing import split_words
from pipeline.kernel.config import Config, parse_duration
from pipeline.kernel.errors import UsageError, options


@dataclass(frozen=True)
class EnvironmentStatus:
    environment: str


@dataclass(frozen=True)
class LockRequest:
    environment: str
    reason: str | None
    duration_s: float | None


@dataclass(frozen=True)
class UnlockRequest:
    environment: str


@dataclass(frozen=True)
class RestoreRequest:
    deployment_id: str


GateCommand = EnvironmentStatus | LockRequest | UnlockRequest | RestoreRequest


def parse_gates(text: str, config: Config) -> GateCommand | None:
    """Turn `/deploy` text about a gate into a typed request; None when it is not about one.
    Raises UsageError naming the valid choices."""
    words = split_words(text)
    if not words:
        return None
    head = words[0].lower()
    if head == "status" and len(words) == 2 and words[1].lower() in config.environments:
        return EnvironmentStatus(words[1].lower())
    if head == "lock":
        return _lock(words[1:], config)
    if head == "unlock":
        if len(words) != 2:
            raise UsageError(
                "Say which environment: `/deploy unlock <environment>`. Environments: {envs}.",
                envs=options(config.environments),
            )
        return UnlockRequest(config.environment(words[1]).name)
    if head == "restore-db":
        if len(words) != 2:
            raise UsageError(
                "Say which deployment's backup to restore: `/deploy restore-db <deployment-id>`."
            )
        return RestoreRequest(words[1])
    return None


def _lock(words: list[str], config: Config) -> LockRequest:
    if not words:
        raise UsageError(
            "Say which environment: `/deploy lock <environment> [reason] [for <duration>]`. "
            "Environments: {envs}.",
            envs=options(config.environments),
        )
    env = config.environment(words[0])
    rest = words[1:]
    duration = None
    if len(rest) >= 2 and rest[-2].lower() == "for":
        try:
            duration = parse_duration(rest[-1])
        except ValueError:
            raise UsageError(
                "`{value}` is not a duration; end with `for 30m` or `for 2h`. A reason that "
                'ends in "for …" goes in quotes: `/deploy lock {env} "{reason}"`.',
                value=rest[-1],
                env=env.name,
                reason=" ".join(rest),
            ) from None
        if duration <= 0:
            raise UsageError("A lock lasts more than 0s; write it like `for 2h`.")
        rest = rest[:-2]
    return LockRequest(env.name, " ".join(rest) or None, duration)
