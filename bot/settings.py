"""Process settings from the environment (and `.env`). The only module that reads `os.environ`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SLACK_API_URL_DEFAULT = "https://slack.com/api/"


class Settings(BaseSettings):
    """Everything the process reads from its environment. Deploy targets live in the config file."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    slack_bot_token: SecretStr = Field(
        validation_alias="SLACK_BOT_TOKEN",
        description="Bot token (`xoxb-…`) from OAuth & Permissions.",
    )
    slack_signing_secret: SecretStr | None = Field(
        None,
        validation_alias="SLACK_SIGNING_SECRET",
        description="Signing secret from Basic Information; required in HTTP mode.",
    )
    slack_app_token: SecretStr | None = Field(
        None,
        validation_alias="SLACK_APP_TOKEN",
        description="App-level token (`xapp-…`, connections:write); set it for Socket Mode.",
    )
    slack_api_url: str = Field(
        SLACK_API_URL_DEFAULT,
        validation_alias="SLACK_API_URL",
        description="Slack Web API base URL; point it at a local fake for tests.",
    )
    config_path: Path = Field(
        Path("chatops.toml"),
        validation_alias="CHATOPS_CONFIG",
        description="The deploy-target config file.",
    )
    db_path: Path = Field(
        Path("chatops.db"), validation_alias="CHATOPS_DB", description="The SQLite database file."
    )
    port: int = Field(3000, ge=1, le=65535, validation_alias="PORT", description="HTTP port.")
    host: str = Field(
        "0.0.0.0",  # noqa: S104 - the bot serves Slack's requests on every interface
        validation_alias="CHATOPS_HOST",
        description="Address the HTTP server binds.",
    )
    shutdown_grace_s: float = Field(
        10.0,
        ge=0,
        validation_alias="CHATOPS_SHUTDOWN_GRACE_S",
        description="Seconds to let running deploys record their state on shutdown.",
    )
    sweep_interval_s: float = Field(
        30.0,
        gt=0,
        validation_alias="CHATOPS_SWEEP_INTERVAL_S",
        description="How often the scheduler wakes to expire approvals and post due reminders.",
    )
    log_level: str = Field(
        "INFO", validation_alias="CHATOPS_LOG_LEVEL", description="Python logging level."
    )

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if not self.slack_api_url.startswith(("http://", "https://")):
            raise ValueError("SLACK_API_URL must start with http:// or https://")
        if not self.slack_api_url.endswith("/"):
            object.__setattr__(self, "slack_api_url", self.slack_api_url + "/")
        return self

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None


ENV_NAMES = {
    name: field.validation_alias
    for name, field in Settings.model_fields.items()
    if isinstance(field.validation_alias, str)
}


class SettingsError(Exception):
    """One line per bad variable: its environment name and what is wrong."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def load_settings(
    environ: Mapping[str, str] | None = None, *, env_file: str | None = ".env"
) -> Settings:
    """Load settings from `environ` (default: the process environment) and `env_file`."""
    source = dict(os.environ if environ is None else environ)
    try:
        return Settings(_env_file=env_file, **_from(source))  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = str(err["loc"][0]) if err["loc"] else ""
            name = ENV_NAMES.get(loc, loc)
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "missing":
                msg = "is not set"
            lines.append(f"{name}: {msg}" if name else msg)
        raise SettingsError(lines) from None


def _from(source: Mapping[str, str]) -> dict[str, str]:
    return {alias: source[alias] for alias in ENV_NAMES.values() if alias in source}
