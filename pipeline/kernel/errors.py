"""The one error hierarchy of the bot; every message in it is safe to show in Slack.

```
ChatOpsError          .line: the sentence for the person (see text.py); .user_message: plain
├── UsageError        bad command input (commands/)
│   ├── UnknownName   a name the config does not know
│   │   ├── UnknownEnvironment
│   │   └── UnknownService
│   └── BadVersion
├── NotFound          unknown run or incident
│   └── UnknownGroup  a user group Slack does not know
├── Forbidden         the user may not do this
├── DeployConflict    already running
├── ShuttingDown      the bot is stopping; retry shortly
├── StageFailed       a stage gave up; carries the stage name
│   └── HealthCheckFailed
└── UpstreamError     AWS, Slack or HTTP failed after retries, translated
    └── OutcomeUnknown  no answer: it may have happened; look before doing it again
```

A message is a template of our copy; what a person typed or a system returned goes in a slot,
so `bot/` escapes it, and people go in `Person`/`People` slots, so `bot/` renders them.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.kernel.text import Line, Slot, counted


def options(known: Iterable[str]) -> str:
    """Config names as a list of code spans (names are validated: no markup can hide in them)."""
    return ", ".join(f"`{name}`" for name in sorted(known))


class ChatOpsError(Exception):
    """A failure a person can read: what happened and what to do next.

    `failure` is True for what went wrong on a system's side (AWS, Slack, a stage): the bot
    then gives the person a reference that is also in the log.
    """

    failure = False

    def __init__(self, message: str | Line, /, **slots: Slot) -> None:
        if isinstance(message, Line):
            self.line = message
        else:
            self.line = Line(message, slots) if slots else Line.literal(message)
        super().__init__(self.line.plain())

    @property
    def user_message(self) -> str:
        """The sentence as plain text (people as IDs): for logs, the audit log and tests."""
        return self.line.plain()


class UsageError(ChatOpsError):
    """The command text could not be understood."""


class UnknownName(UsageError):
    """A name the config does not know (`given`); its `sentence` lists the `known` ones."""

    sentence: str

    def __init__(self, given: str, known: Iterable[str]) -> None:
        super().__init__(self.sentence, given=given, known=options(known))
        self.given = given


class UnknownEnvironment(UnknownName):
    sentence = "No environment is called `{given}`. Try one of {known}."


class UnknownService(UnknownName):
    sentence = "No service is called `{given}`. Try one of {known}, or `all`."


class BadVersion(UsageError):
    """`given` is no version; `problem` (our copy, with its own slots) says why, when known."""

    def __init__(self, given: str, problem: Line | None = None) -> None:
        why = f": {problem.template}" if problem is not None else ""
        super().__init__(
            Line(
                f"`{{given}}` is not a version{why}. Versions look like `v1.2.3` or `v2.0.0-rc1`.",
                {**(problem.slots if problem is not None else {}), "given": given},
            )
        )
        self.given = given


class NotFound(ChatOpsError):
    """An unknown run, incident or record."""


class UnknownGroup(NotFound):
    """Slack has no user group with this ID (a typo in the config, or a deleted group)."""

    def __init__(self, group_id: str) -> None:
        super().__init__("Slack has no user group `{group}`.", group=group_id)
        self.group_id = group_id


class Forbidden(ChatOpsError):
    """The user is not allowed to do this; nothing was changed."""


class DeployConflict(ChatOpsError):
    def __init__(self, environment: str, services: Iterable[str], other_id: str) -> None:
        super().__init__(
            "{names} in `{environment}` already has deployment `{other}` in progress. "
            "Wait for it to finish (`/deploy status {other}`) and try again.",
            names=options(services),
            environment=environment,
            other=other_id,
        )
        self.other_id = other_id


class ShuttingDown(ChatOpsError):
    def __init__(self) -> None:
        super().__init__("The bot is restarting right now. Try again in a minute.")


class StageFailed(ChatOpsError):
    """A pipeline stage gave up; `stage` names it."""

    failure = True

    def __init__(self, stage: str, message: str | Line, /, **slots: Slot) -> None:
        super().__init__(message, **slots)
        self.stage = stage


class HealthCheckFailed(StageFailed):
    def __init__(self, service: str, url: str, detail: str, attempts: int) -> None:
        super().__init__(
            "health_check",
            "`{service}` failed its health check `{url}` after {attempts} ({detail}).",
            service=service,
            url=url,
            attempts=counted(attempts, "attempt"),
            detail=detail,
        )
        self.service = service


class UpstreamError(ChatOpsError):
    """AWS, Slack or another upstream failed after retries; the raw error is in `__cause__`."""

    failure = True


class OutcomeUnknown(UpstreamError):
    """The call may have taken effect though no success came back (no answer in time, a server
    error): look before doing it again."""
