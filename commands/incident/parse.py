"""`/incident` text -> typed requests, its usage text, and the war-room channel name.

No Slack types here.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from commands.exchange import Submission
from commands.parsing import Help
from commands.usage import Glossary, Syntax, Term, Usage
from pipeline.kernel.config import INCIDENT_SUBCOMMANDS, Config, Severity
from pipeline.kernel.errors import UsageError
from pipeline.kernel.text import Line, duration_words, line
from store.incident.models import UPDATE_STATUSES, IncidentStatus

# Slack: channel names are at most 80 characters of lowercase letters, digits, '-' and '_'.
CHANNEL_NAME_MAX = 80
_NOT_CHANNEL_CHARS = re.compile(r"[^a-z0-9_-]+")
_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$|^([UW][A-Z0-9]{2,})$")


@dataclass(frozen=True)
class Declare:
    severity: str
    summary: str
    services: tuple[str, ...] = ()
    """The services picked in the declare form; the summary may name more."""


@dataclass(frozen=True)
class DeclareForm:
    """`/incident` or `/incident declare [severity] [summary]`: open the declare form with
    what was typed in it."""

    severity: str | None = None
    summary: str = ""


@dataclass(frozen=True)
class Update:
    status: IncidentStatus
    action: str


@dataclass(frozen=True)
class Resolve:
    resolution: str


@dataclass(frozen=True)
class Commander:
    user_id: str


@dataclass(frozen=True)
class ListOpen:
    pass


IncidentCommand = Help | DeclareForm | Declare | Update | Resolve | Commander | ListOpen


def _split(text: str) -> tuple[str, str]:
    """The first word and the rest, both stripped; any whitespace separates them."""
    parts = text.strip().split(maxsplit=1)
    return (parts[0], parts[1].strip()) if len(parts) == 2 else (parts[0] if parts else "", "")


def statuses() -> str:
    return ", ".join(f"`{s.value}`" for s in UPDATE_STATUSES)


def cadence(severity: Severity) -> str:
    every = severity.update_every_s
    return f"updates every {duration_words(every)}" if every else "no update reminders"


def usage(config: Config) -> Usage:
    """What `/incident help` shows; every subcommand is listed here and in docs/incidents.md."""
    keys = "|".join(config.incidents.severities)
    return Usage(
        forms=(
            Syntax(
                "/incident [declare]",
                Line.literal(
                    "open the declare form: severity, summary and the services it is about. A "
                    "P1 or P2 freezes deploys of those services until it is resolved."
                ),
            ),
            Syntax(
                f"/incident <{keys}> <summary>",
                Line.literal(
                    "declare an incident. Opens a war-room channel, invites the responders, "
                    "posts and pins the initial alert; you become the commander."
                ),
            ),
            Syntax(
                "/incident update <status> <what we are doing>",
                line(
                    "post an update (in the war room). Status is one of {statuses}.",
                    statuses=statuses(),
                ),
            ),
            Syntax(
                "/incident resolve <what fixed it>",
                Line.literal(
                    "resolve it (in the war room); posts the duration and a post-mortem skeleton."
                ),
            ),
            Syntax(
                "/incident commander @someone",
                Line.literal("hand over command (in the war room)"),
            ),
            Syntax(
                "/incident list",
                Line.literal("open incidents with severity, age and last update"),
            ),
            Syntax("/incident help", Line.literal("this message")),
        ),
        glossary=Glossary(
            "Severities",
            tuple(
                Term(
                    key,
                    Line.literal(
                        f"{sev.description} (response: {sev.response_time}; {cadence(sev)})"
                    ),
                )
                for key, sev in config.incidents.severities.items()
            ),
        ),
    )


def parse_incident(text: str, config: Config) -> IncidentCommand:
    """Turn `/incident` text into a typed request. Raises UsageError naming the valid choices."""
    head, rest = _split(text)
    head = head.lower()
    severities = config.incidents.severities
    if head == "":
        return DeclareForm()
    if head == "declare":
        word, summary = _split(rest)
        if word.lower() in severities:
            return DeclareForm(word.lower(), summary)
        return DeclareForm(None, rest)
    if head == "help":
        return Help()
    if head == "list":
        if rest:
            raise UsageError("`/incident list` takes nothing after it; got `{rest}`.", rest=rest)
        return ListOpen()
    if head == "update":
        word, action = _split(rest)
        if not word:
            raise UsageError(
                "Say the status and what you are doing: `/incident update <status> <action>`, "
                f"with status one of {statuses()}."
            )
        status = next((s for s in UPDATE_STATUSES if s.value == word.lower()), None)
        if status is None:
            hint = (
                " To close the incident, use `/incident resolve <what fixed it>`."
                if word.lower() == IncidentStatus.RESOLVED.value
                else ""
            )
            raise UsageError(
                "`{word}` is not an update status. Use one of {statuses}.{hint}",
                word=word,
                statuses=statuses(),
                hint=hint,
            )
        if not action:
            raise UsageError(f"Say what you are doing: `/incident update {status.value} <action>`.")
        return Update(status, action)
    if head == "resolve":
        if not rest:
            raise UsageError("Say what fixed it: `/incident resolve <resolution>`.")
        return Resolve(rest)
    if head == "commander":
        match = _MENTION.match(rest)
        if match is None:
            raise UsageError(
                "Mention the new commander: `/incident commander @someone`, picking them from "
                "Slack's autocomplete so the mention becomes a link.{not_one}",
                not_one=f" `{rest}` is not a mention." if rest else "",
            )
        return Commander(match.group(1) or match.group(2))
    if head in severities:
        if not rest:
            raise UsageError(
                "Add a summary of what is broken: `/incident {head} auth login failing`.",
                head=head,
            )
        return Declare(head, rest)
    options = ", ".join(f"`{k}`" for k in severities)
    subcommands = ", ".join(f"`{s}`" for s in INCIDENT_SUBCOMMANDS)
    raise UsageError(
        "`{head}` is neither a severity nor a subcommand. Declare with one of {options} "
        "(`/incident p1 <summary>`), open the declare form with `/incident`, or use one of "
        "{subcommands}.",
        head=head,
        options=options,
        subcommands=subcommands,
    )


def channel_name(pattern: str, *, at: datetime, summary: str, severity: str) -> str:
    """The war-room name from `pattern`: lowercase, Slack's characters, at most 80 long."""
    ascii_text = unicodedata.normalize("NFKD", summary).encode("ascii", "ignore").decode()
    slug = _NOT_CHANNEL_CHARS.sub("-", ascii_text.lower()).strip("-_") or "incident"
    name = pattern.format(date=at.strftime("%Y%m%d"), slug=slug, severity=severity)
    name = re.sub(r"-{2,}", "-", _NOT_CHANNEL_CHARS.sub("-", name.lower()))
    return name[:CHANNEL_NAME_MAX].rstrip("-_")


@dataclass(frozen=True)
class UpdateForm:
    """A valid *Post update* form."""

    status: IncidentStatus
    action: str
    eta: str
    impact: str


@dataclass(frozen=True)
class ResolveForm:
    """A valid *Resolve* form."""

    impact: str
    resolution: str
    follow_up: str


SERVICES_SEPARATORS = re.compile(r"[\s,]+")


def parse_declare_form(form: Submission, config: Config) -> Declare | dict[str, str]:
    """The declare form's incident, or what is wrong with it by field name. Services come
    from the multi-select, or typed (comma-separated) where there were too many to list."""
    errors = {}
    severities = config.incidents.severities
    severity = form.text("severity").lower()
    if severity not in severities:
        errors["severity"] = "Pick a severity: " + ", ".join(k.upper() for k in severities) + "."
    summary = form.text("summary")
    if not summary:
        errors["summary"] = "Say what is broken; a sentence is enough."
    picked = form.chosen("services") or tuple(
        w for w in SERVICES_SEPARATORS.split(form.text("services")) if w
    )
    unknown = [s for s in picked if s not in config.services]
    if unknown:
        errors["services"] = (
            f"Not a configured service: {', '.join(unknown)}. The services are "
            f"{', '.join(config.services)}."
        )
    if errors:
        return errors
    return Declare(severity, summary, tuple(dict.fromkeys(picked)))


def parse_update_form(form: Submission) -> UpdateForm | dict[str, str]:
    """The form's values, or what is wrong with it by field name."""
    errors = {}
    status = next((s for s in UPDATE_STATUSES if s.value == form.text("status")), None)
    if status is None:
        errors["status"] = "Pick a status: investigating, identified, mitigating or monitoring."
    if not form.text("action"):
        errors["action"] = "Say what we are doing; a sentence is enough."
    if not form.text("eta"):
        errors["eta"] = "Give an estimate, or write Unknown."
    if not form.text("impact"):
        errors["impact"] = "Describe the impact on users."
    if errors or status is None:
        return errors
    return UpdateForm(status, form.text("action"), form.text("eta"), form.text("impact"))


def parse_resolve_form(form: Submission) -> ResolveForm | dict[str, str]:
    """The form's values, or what is wrong with it by field name."""
    errors = {}
    if not form.text("impact"):
        errors["impact"] = "Summarise the impact on users."
    if not form.text("resolution"):
        errors["resolution"] = "Say what fixed it."
    if errors:
        return errors
    return ResolveForm(form.text("impact"), form.text("resolution"), form.text("follow_up"))
