"""`/health` text -> a typed request. No Slack types here.

`/health <environment> [service...] [--full]`, services separated by spaces or commas.
"""

from __future__ import annotations

from dataclasses import dataclass

from commands.parsing import Help
from pipeline.kernel.config import Config
from pipeline.kernel.errors import UsageError


@dataclass(frozen=True)
class HealthRequest:
    environment: str
    services: tuple[str, ...]
    """Each service once, in the order named; every service when none is named."""
    full: bool
    """`--full`: also what ECS runs."""


def parse_health(text: str, config: Config) -> Help | HealthRequest:
    """Turn `/health` text into a request. Raises UsageError naming the valid choices."""
    words = text.split()
    full = any(w.lower() == "--full" for w in words)
    words = [w for w in words if w.lower() != "--full"]
    if not words or words[0].lower() == "help":
        return Help()
    unknown = [w for w in words[1:] for part in w.split(",") if part and part.startswith("-")]
    if unknown:
        raise UsageError(
            "`{flag}` is not a flag of `/health`; the only one is `--full`.", flag=unknown[0]
        )
    env = config.environment(words[0])
    names = [p for w in words[1:] for p in w.split(",") if p]
    # Named twice (`auth-svc auth-svc`, `AUTH-svc,auth-svc`): one row.
    named = dict.fromkeys(config.service(n).name for n in names)
    return HealthRequest(env.name, tuple(named or config.services), full)
