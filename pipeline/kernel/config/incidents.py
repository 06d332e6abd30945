"""The incident feature's settings: announcement channel, war-room names, severities."""

from __future__ import annotations

import re

from pydantic import Field, model_validator

from pipeline.kernel.config.durations import Duration, SettingsModel, SlackIds

_CHANNEL = re.compile(r"^[a-z0-9_-]{1,80}$")
_SEVERITY = re.compile(r"^[a-z0-9]+$")

# Who, besides the commander, may post updates, hand over and resolve (`may_act`): these roles,
# and any user or user-group IDs listed with them.
INCIDENT_ROLES = ("commander", "responders", "war_room")
_ACTOR_ID = re.compile(r"^[UWS][A-Z0-9]{2,}$")

# Words `/incident` reads as subcommands, so no severity may be called one of them.
INCIDENT_SUBCOMMANDS = ("declare", "update", "resolve", "commander", "list", "help")


class Severity(SettingsModel):
    description: str
    response_time: str
    update_every_s: Duration | None = Field(
        None,
        alias="update_every",
        description="How often the war room must post an update; leave out for no reminders.",
    )
    responders: SlackIds = Field(
        default_factory=list,
        description="User (U…/W…) and user-group (S…) IDs invited to every war room.",
    )
    escalate_to: SlackIds = Field(
        default_factory=list,
        description="Extra user or group IDs mentioned, with @channel, when a reminder goes "
        "unanswered for a further full interval.",
    )

    may_act: list[str] = Field(
        default_factory=lambda: ["commander", "responders", "war_room"],
        description="Who may post updates, hand over and resolve: `commander` (always), "
        "`responders` (this severity's), `war_room` (members of the war-room channel), and "
        "user or user-group IDs. Anyone else is refused.",
    )

    @property
    def may_act_ids(self) -> list[str]:
        """The user and group IDs that may act: the listed ones, and the responders if listed."""
        ids = [i for i in self.may_act if i not in INCIDENT_ROLES]
        if "responders" in self.may_act:
            ids = [*self.responders, *(i for i in ids if i not in self.responders)]
        return ids

    @property
    def war_room_may_act(self) -> bool:
        return "war_room" in self.may_act

    @model_validator(mode="after")
    def _check(self) -> Severity:
        for entry in self.may_act:
            if entry not in INCIDENT_ROLES and not _ACTOR_ID.match(entry):
                raise ValueError(
                    f"may_act: {entry!r} is neither a role ({', '.join(INCIDENT_ROLES)}) nor a "
                    "Slack user (U…/W…) or user-group (S…) ID"
                )
        if self.update_every_s is not None and self.update_every_s <= 0:
            raise ValueError("update_every must be more than 0s (leave it out for none)")
        return self


def _default_severities() -> dict[str, Severity]:
    table = {
        "p1": ("Service down, all users affected", "Immediate", "15m"),
        "p2": ("Major feature broken", "15 minutes", "30m"),
        "p3": ("Minor feature broken", "1 hour", "60m"),
        "p4": ("Cosmetic issue", "Next business day", None),
    }
    return {
        key: Severity.model_validate(
            {"description": d, "response_time": r, "update_every": u}
            if u
            else {"description": d, "response_time": r}
        )
        for key, (d, r, u) in table.items()
    }


class Incidents(SettingsModel):
    channel: str | None = Field(None, description="Channel ID where incidents are announced.")
    environment: str | None = Field(
        None, description="Environment whose recent deploys are listed as suspects."
    )
    channel_pattern: str = Field(
        "inc-{date}-{slug}",
        description="War-room channel name; {date} is YYYYMMDD (UTC), {slug} the summary, "
        "{severity} the level.",
    )
    severities: dict[str, Severity] = Field(default_factory=_default_severities)
    suspect_window_s: Duration = Field(
        7200.0,
        alias="suspect_window",
        description="Deploys that finished this recently are listed as suspects.",
    )

    @model_validator(mode="after")
    def _check(self) -> Incidents:
        try:
            sample = self.channel_pattern.format(date="20260101", slug="x", severity="p1")
        except (KeyError, IndexError, ValueError):
            raise ValueError("channel_pattern may only use {date}, {slug} and {severity}") from None
        if "{slug}" not in self.channel_pattern:
            raise ValueError("channel_pattern must contain {slug}")
        if not _CHANNEL.match(sample):
            raise ValueError(
                "channel_pattern must give a Slack channel name: lowercase letters, digits, "
                "'-' and '_'"
            )
        if not self.severities:
            raise ValueError("at least one severity is needed")
        for key in self.severities:
            if not _SEVERITY.match(key) or key in INCIDENT_SUBCOMMANDS:
                raise ValueError(
                    f"severities.{key}: a severity is a lowercase word such as 'p1', and not one "
                    f"of {', '.join(INCIDENT_SUBCOMMANDS)}"
                )
        return self
