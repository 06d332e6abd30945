"""The deploy-target config (`chatops.toml`): environments, services, incidents.

Loaded once at startup and validated with pydantic; a broken file names the broken key.
Durations are written "30s", "15m", "2h" and held as float seconds.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from pipeline.errors import UnknownEnvironment, UnknownService

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SLACK_ID = re.compile(r"^[UWS][A-Z0-9]{2,}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_CHANNEL = re.compile(r"^[a-z0-9_-]{1,80}$")
_SEVERITY = re.compile(r"^[a-z0-9]+$")

# Words `/incident` reads as subcommands, so no severity may be called one of them.
INCIDENT_SUBCOMMANDS = ("update", "resolve", "commander", "list", "help")

DEFAULT_HEALTH_PATHS = ("/health", "/ready", "/api/v1/status")


def parse_duration(value: Any) -> float:
    """Turn "30s", "15m", "2h" (or a number of seconds) into float seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '30s', '15m' or '2h'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration; write it like '30s', '15m' or '2h'")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def format_duration(seconds: float) -> str:
    """Render seconds the way the config writes them ("90s" -> "1m 30s")."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
        f"{secs}s" if secs else "",
    ]
    return " ".join(p for p in parts if p) or "0s"


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _slack_ids(values: list[str]) -> list[str]:
    for v in values:
        if not _SLACK_ID.match(v):
            raise ValueError(f"{v!r} is not a Slack user ID (U…/W…) or user-group ID (S…)")
    return values


SlackIds = Annotated[list[str], AfterValidator(_slack_ids)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HealthSettings(_Model):
    retries: int = Field(10, ge=1, description="Attempts per endpoint before giving up.")
    interval_s: Duration = Field(30.0, alias="interval", description="Wait between attempts.")
    timeout_s: Duration = Field(30.0, alias="timeout", description="Deadline for one request.")
    paths: tuple[str, ...] = DEFAULT_HEALTH_PATHS
    expect_status: int = Field(200, ge=100, le=599)

    @model_validator(mode="after")
    def _positive(self) -> HealthSettings:
        if self.timeout_s <= 0:
            raise ValueError("timeout must be more than 0s")
        for p in self.paths:
            if not p.startswith("/"):
                raise ValueError(f"health path {p!r} must start with '/'")
        return self


class RolloutSettings(_Model):
    stable_timeout_s: Duration = Field(
        900.0, alias="stable_timeout", description="How long ECS may take to run the new revision."
    )
    poll_interval_s: Duration = Field(10.0, alias="poll_interval")
    max_parallel: int = Field(4, ge=1, le=32, description="Services deployed at once.")


class Environment(_Model):
    name: str = ""
    cluster: str = Field(min_length=1)
    region: str = "us-east-1"
    required_approvals: int = Field(0, ge=0, le=10)
    approvers: SlackIds = Field(default_factory=list)
    deployers: SlackIds = Field(default_factory=list)
    approval_timeout_s: Duration = Field(7200.0, alias="approval_timeout")
    confirm_buttons: bool = False
    promote_from: str | None = None
    health: HealthSettings = Field(default_factory=lambda: HealthSettings.model_validate({}))
    rollout: RolloutSettings = Field(default_factory=lambda: RolloutSettings.model_validate({}))

    @model_validator(mode="after")
    def _check(self) -> Environment:
        if self.required_approvals and not self.approvers:
            raise ValueError(
                f"required_approvals is {self.required_approvals} but approvers is empty"
            )
        return self


class Service(_Model):
    name: str = ""
    ecs_service: str = ""
    container: str = ""
    image: str = Field("", description="Image repository, without the tag.")
    health_url: dict[str, str] = Field(default_factory=dict)
    health_paths: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _check(self) -> Service:
        for env, url in self.health_url.items():
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"health_url.{env} must start with http:// or https://")
        return self


class Severity(_Model):
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

    @model_validator(mode="after")
    def _check(self) -> Severity:
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


class Incidents(_Model):
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


class Config(_Model):
    environments: dict[str, Environment]
    services: dict[str, Service]
    incidents: Incidents = Field(default_factory=lambda: Incidents.model_validate({}))

    @model_validator(mode="before")
    @classmethod
    def _fill_names(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for section in ("environments", "services"):
            table = data.get(section)
            if isinstance(table, dict):
                for name, body in table.items():
                    if isinstance(body, dict):
                        body.setdefault("name", name)
        services = data.get("services")
        if isinstance(services, dict):
            for name, body in services.items():
                if isinstance(body, dict):
                    body.setdefault("ecs_service", name)
                    body.setdefault("container", name)
        return data

    @model_validator(mode="after")
    def _cross_check(self) -> Config:
        if not self.environments:
            raise ValueError("at least one environment is needed")
        if not self.services:
            raise ValueError("at least one service is needed")
        for name in [*self.environments, *self.services]:
            if not _NAME.match(name) or name == "all":
                raise ValueError(
                    f"{name!r} cannot be a name: use lowercase letters, digits, '-' and '_' "
                    "(and not 'all')"
                )
        for env in self.environments.values():
            if env.promote_from is not None:
                if env.promote_from not in self.environments:
                    raise ValueError(
                        f"environments.{env.name}.promote_from names {env.promote_from!r}, "
                        "which is not an environment"
                    )
                if env.promote_from == env.name:
                    raise ValueError(f"environments.{env.name}.promote_from names itself")
        for svc in self.services.values():
            for env_name in svc.health_url:
                if env_name not in self.environments:
                    raise ValueError(
                        f"services.{svc.name}.health_url.{env_name}: no such environment"
                    )
        inc_env = self.incidents.environment
        if inc_env is not None and inc_env not in self.environments:
            raise ValueError(
                f"incidents.environment names {inc_env!r}, which is not an environment"
            )
        return self

    def environment(self, name: str) -> Environment:
        try:
            return self.environments[name.lower()]
        except KeyError:
            raise UnknownEnvironment(name, self.environments) from None

    def service(self, name: str) -> Service:
        try:
            return self.services[name.lower()]
        except KeyError:
            raise UnknownService(name, self.services) from None


class ConfigError(Exception):
    """The config file is missing or invalid; `problems` holds one line per broken key."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__(f"{path}: " + "; ".join(problems))
        self.path = path
        self.problems = problems


def load_config(path: Path) -> Config:
    """Read and validate a config file. Raises ConfigError naming each broken key."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, ["file not found (copy chatops.example.toml to start)"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"not valid TOML: {exc}"]) from None
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            # Cross-checks on the whole file name their own keys in the message.
            problems.append(f"{key}: {msg}" if key else msg)
        raise ConfigError(path, problems) from None
