"""What a person sends the bot and what a command answers, without Slack types.

`bot/` turns each Slack payload into an `Invocation` (slash command), a `Click` (button) or a
`Submission` (form), calls the command's handler and renders what it returns:

- an `Outcome`: what to tell the person privately, which deploy cards to redraw, which form to
  open, the form's field errors, and how the audit row ends;
- or a `Later` (commands and forms only): acknowledge now, then run the slow part (AWS, Slack)
  and render its `Outcome` when it is ready.

A handler may raise `ChatOpsError`; the dispatcher in `bot/` renders and audits it the same way
as an `Outcome.error`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from store.deploy.models import Deployment

if TYPE_CHECKING:
    # The unions name every feature's replies; the features import this module, so only the
    # type checker follows this import (import-linter skips it: exclude_type_checking_imports).
    from commands.replies import Form, Reply


@dataclass(frozen=True)
class Invocation:
    """A slash command: `/deploy production all` typed by `user_id` in `channel_id`."""

    command: str
    text: str
    user_id: str
    channel_id: str

    @property
    def typed(self) -> str:
        return f"{self.command} {self.text}".strip()


@dataclass(frozen=True)
class Click:
    """A button press. `value` is what the button carries (a deployment or incident id)."""

    action_id: str
    value: str
    user_id: str
    channel_id: str | None
    message_ts: str | None = None


@dataclass(frozen=True)
class Submission:
    """A submitted form: its fields by name, and the record (`subject`) and channel it is about.

    `fields` holds what was typed or picked once; `choices` what was picked in a field that
    takes several (a multi-select)."""

    callback_id: str
    user_id: str
    subject: str
    channel_id: str | None
    fields: Mapping[str, str] = field(default_factory=dict)
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def text(self, name: str) -> str:
        return self.fields.get(name, "").strip()

    def chosen(self, name: str) -> tuple[str, ...]:
        return self.choices.get(name, ())


def form_metadata(subject: str, channel_id: str | None) -> str:
    """What a form carries through Slack so its submission knows its record and channel."""
    return json.dumps({"subject": subject, "channel": channel_id}, separators=(",", ":"))


def read_form_metadata(metadata: str) -> tuple[str, str | None]:
    """(subject, channel) from `form_metadata`; a bare id (older forms) has no channel."""
    try:
        data: Any = json.loads(metadata)
    except ValueError:
        return metadata, None
    if not isinstance(data, dict):
        return metadata, None
    channel = data.get("channel")
    return str(data.get("subject", "")), str(channel) if channel else None


@dataclass(frozen=True)
class Outcome:
    """What a handler decided. Every field is optional; `audit` is how the audit row ends.

    `error` is told to the person instead of `reply` (a ChatOpsError says why in their words;
    anything else becomes "something went wrong", with a reference in the log).
    """

    reply: Reply | None = None
    error: Exception | None = None
    cards: tuple[Deployment, ...] = ()
    form: Form | None = None
    form_errors: Mapping[str, str] = field(default_factory=dict)
    audit: str = "ok"
    ref: str | None = None
    replace: bool = False
    """A click's reply replaces the message that was clicked (a question once answered)."""
    announce: bool = False
    """Say `reply` to the whole channel where the person acted, not only to them."""


@dataclass(frozen=True)
class Later:
    """Acknowledge now and finish later: `then()` does the slow part and returns the Outcome.

    `ref` is the id of the record `then()` will create, when known before it starts (a
    deployment's id): if the bot dies before the request finishes, a request whose record
    exists is left to that record's own recovery, and one whose record does not exist is known
    to have changed nothing.
    """

    then: Callable[[], Awaitable[Outcome]]
    ref: str | None = None


Answer = Outcome | Later
