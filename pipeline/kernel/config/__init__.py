"""The config file (`chatops.toml`): one root model composed of each feature's settings.

Loaded once at startup and validated with pydantic; a broken file names the broken key.
Durations are written "30s", "15m", "2h" and held as float seconds.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from pipeline.kernel.config.deploy import (
    DEFAULT_HEALTH_PATHS,
    Environment,
    HealthSettings,
    RolloutSettings,
    Service,
)
from pipeline.kernel.config.durations import (
    Duration,
    SettingsModel,
    SlackIds,
    format_duration,
    parse_duration,
)
from pipeline.kernel.config.incidents import INCIDENT_SUBCOMMANDS, Incidents, Severity
from pipeline.kernel.errors import UnknownEnvironment, UnknownService

__all__ = [
    "DEFAULT_HEALTH_PATHS",
    "INCIDENT_SUBCOMMANDS",
    "Config",
    "ConfigError",
    "Duration",
    "Environment",
    "HealthSettings",
    "Incidents",
    "RolloutSettings",
    "Service",
    "Severity",
    "SlackIds",
    "format_duration",
    "load_config",
    "parse_duration",
]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class Config(SettingsModel):
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
        for env in self.environments.values():
            seen: set[str] = set()
            for i, group in enumerate(env.groups):
                for name in group:
                    if name not in self.services:
                        raise ValueError(
                            f"environments.{env.name}.groups[{i}]: {name!r} is not a service"
                        )
                    if name in seen:
                        raise ValueError(
                            f"environments.{env.name}.groups: {name!r} is in two groups"
                        )
                    seen.add(name)
        for svc in self.services.values():
            if svc.migration is not None:
                missing = [e.name for e in self.environments.values() if e.network is None]
                if missing:
                    raise ValueError(
                        f"services.{svc.name}.migration needs a `network` (subnets and security "
                        f"groups) in every environment; missing in {', '.join(missing)}"
                    )
            for env_name in svc.canary:
                if env_name not in self.environments:
                    raise ValueError(f"services.{svc.name}.canary.{env_name}: no such environment")
            for env_name in svc.health_url:
                if env_name not in self.environments:
                    raise ValueError(
                        f"services.{svc.name}.health_url.{env_name}: no such environment"
                    )
        for env in self.environments.values():
            for table in ("services", "target_groups"):
                for name in getattr(env.watch, table):
                    if name not in self.services:
                        raise ValueError(
                            f"environments.{env.name}.watch.{table}: {name!r} is not a service"
                        )
        inc_env = self.incidents.environment
        if inc_env is not None and inc_env not in self.environments:
            raise ValueError(
                f"incidents.environment names {inc_env!r}, which is not an environment"
            )
        return self

    def user_groups(self) -> dict[str, list[str]]:
        """Every user-group ID (S…) the config names, with the keys that name it."""
        return self.named_ids("S")

    def named_ids(self, *initials: str) -> dict[str, list[str]]:
        """Every ID the config names in its lists of people that starts with one of `initials`
        (`S`: a user group; `U`, `W`: a user), with the keys that name it."""
        where: dict[str, list[str]] = {}
        lists: list[tuple[str, list[str]]] = []
        for env in self.environments.values():
            base = f"environments.{env.name}"
            lists += [(f"{base}.approvers", env.approvers), (f"{base}.deployers", env.deployers)]
            lists.append((f"{base}.rollbackers", env.rollbackers or []))
        for key, sev in self.incidents.severities.items():
            base = f"incidents.severities.{key}"
            lists += [
                (f"{base}.responders", sev.responders),
                (f"{base}.escalate_to", sev.escalate_to),
            ]
        for key, ids in lists:
            for ident in ids:
                if ident.startswith(initials):
                    where.setdefault(ident, []).append(key)
        return where

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
