"""The one error hierarchy of the bot; every message in it is safe to show in Slack.

```
ChatOpsError          .user_message: str, safe to show in Slack
├── UsageError        bad command input (commands/)
│   ├── UnknownEnvironment
│   ├── UnknownService
│   └── BadVersion
├── NotFound          unknown run or incident
├── Forbidden         the user may not do this
├── DeployConflict    already running
├── ShuttingDown      the bot is stopping; retry shortly
├── StageFailed       a stage gave up; carries the stage name
│   └── HealthCheckFailed
└── UpstreamError     AWS/HTTP failure after retries, translated
```
"""

from __future__ import annotations

from collections.abc import Iterable


def _options(known: Iterable[str]) -> str:
    return ", ".join(f"`{name}`" for name in sorted(known))


class ChatOpsError(Exception):
    """A failure a user can read: `user_message` says what happened and what to do next."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class UsageError(ChatOpsError):
    """The command text could not be understood."""


class UnknownEnvironment(UsageError):
    def __init__(self, given: str, known: Iterable[str]) -> None:
        super().__init__(f"No environment is called `{given}`. Try one of {_options(known)}.")
        self.given = given


class UnknownService(UsageError):
    def __init__(self, given: str, known: Iterable[str]) -> None:
        super().__init__(f"No service is called `{given}`. Try one of {_options(known)}, or `all`.")
        self.given = given


class BadVersion(UsageError):
    def __init__(self, given: str) -> None:
        super().__init__(
            f"`{given}` is not a version. Versions look like `v1.2.3` or `v2.0.0-rc1`."
        )
        self.given = given


class NotFound(ChatOpsError):
    """An unknown run, incident or record."""


class Forbidden(ChatOpsError):
    """The user is not allowed to do this; nothing was changed."""


class DeployConflict(ChatOpsError):
    def __init__(self, environment: str, services: Iterable[str], other_id: str) -> None:
        names = ", ".join(f"`{s}`" for s in sorted(services))
        super().__init__(
            f"{names} in `{environment}` already has deployment `{other_id}` in progress. "
            "Wait for it to finish (`/deploy status "
            f"{other_id}`) and try again."
        )
        self.other_id = other_id


class ShuttingDown(ChatOpsError):
    def __init__(self) -> None:
        super().__init__("The bot is restarting right now. Try again in a minute.")


class StageFailed(ChatOpsError):
    """A pipeline stage gave up; `stage` names it."""

    def __init__(self, stage: str, user_message: str) -> None:
        super().__init__(user_message)
        self.stage = stage


class HealthCheckFailed(StageFailed):
    def __init__(self, service: str, url: str, detail: str, attempts: int) -> None:
        super().__init__(
            "health_check",
            f"`{service}` failed its health check `{url}` after {attempts} attempts ({detail}).",
        )
        self.service = service


class UpstreamError(ChatOpsError):
    """AWS or another upstream failed after retries; the raw error is in `__cause__`."""
