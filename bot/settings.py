"""Process settings from the environment (and `.env`). The only module that reads `os.environ`."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.logs import LogFormat

SLACK_API_URL_DEFAULT = "https://slack.com/api/"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


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
    slack_timeout_s: float = Field(
        15.0,
        gt=0,
        validation_alias="CHATOPS_SLACK_TIMEOUT_S",
        description="Seconds the bot waits for each Slack Web API answer; a post left "
        "unanswered is looked for in the channel before it is posted again.",
    )
    config_path: Path = Field(
        Path("chatops.toml"),
        validation_alias="CHATOPS_CONFIG",
        description="The deploy-target config file.",
    )
    db_path: Path = Field(
        Path("chatops.db"), validation_alias="CHATOPS_DB", description="The SQLite database file."
    )
    database_url: SecretStr | None = Field(
        None,
        validation_alias="CHATOPS_DATABASE_URL",
        description="A `postgresql://user:password@host:5432/db` URL: the bot keeps its "
        "records in that PostgreSQL database instead of the `CHATOPS_DB` file "
        "(docs/high-availability.md). Its password is never logged.",
    )
    port: int = Field(3000, ge=1, le=65535, validation_alias="PORT", description="HTTP port.")
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        validation_alias="CHATOPS_METRICS_PORT",
        description="Port of a second HTTP server, on the same address, that serves only "
        "`GET /metrics`; unset (or `PORT`), `/metrics` is served on `PORT`.",
    )
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
        300.0,
        gt=0,
        validation_alias="CHATOPS_SWEEP_INTERVAL_S",
        description="How often a safety sweep looks for due work a timer missed; each "
        "reminder and approval expiry has its own timer and fires on time.",
    )
    replica_id: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        validation_alias="CHATOPS_REPLICA_ID",
        description="This replica's name in run leases (docs/high-availability.md). Default: "
        "the host name, which a restart on the same host keeps, so a restarted bot takes its "
        "runs back at once. Give each replica on one host a name of its own.",
    )
    lease_ttl_s: float = Field(
        20.0,
        gt=0,
        validation_alias="CHATOPS_LEASE_TTL_S",
        description="How long a run's lease lasts unless renewed: another replica takes a run "
        "over within this plus `CHATOPS_LEASE_RENEW_S` of its owner's death.",
    )
    lease_renew_s: float = Field(
        5.0,
        gt=0,
        validation_alias="CHATOPS_LEASE_RENEW_S",
        description="How often a replica renews its leases and looks for runs whose lease "
        "lapsed; at most half of `CHATOPS_LEASE_TTL_S`.",
    )
    audit_retention_days: float = Field(
        90.0,
        gt=0,
        validation_alias="CHATOPS_AUDIT_RETENTION_DAYS",
        description="Audit rows older than this many days are deleted by the prune job.",
    )
    prune_interval_s: float = Field(
        3600.0,
        gt=0,
        validation_alias="CHATOPS_PRUNE_INTERVAL_S",
        description="How often old audit rows, and replay keys past Slack's five-minute "
        "window, are deleted (also once at start-up).",
    )
    log_level: str = Field(
        "INFO", validation_alias="CHATOPS_LOG_LEVEL", description="Python logging level."
    )
    log_format: LogFormat = Field(
        LogFormat.TEXT,
        validation_alias="CHATOPS_LOG_FORMAT",
        description="`text` (one readable line per event) or `json` (one JSON object per line: "
        "time, level, logger, message, ref, deployment_id, incident_id, exception). Both "
        "redact Slack tokens and the secrets above.",
    )

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(POSTGRES_SCHEMES):
            raise ValueError("must start with postgresql:// (the PostgreSQL backend)")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        # A field validator, not a model one, so its error is listed with the other bad variables.
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value if value.endswith("/") else value + "/"

    @model_validator(mode="after")
    def _renew_inside_ttl(self) -> Settings:
        if self.lease_renew_s * 2 > self.lease_ttl_s:
            raise ValueError(
                f"CHATOPS_LEASE_RENEW_S ({self.lease_renew_s:g}) must be at most half of "
                f"CHATOPS_LEASE_TTL_S ({self.lease_ttl_s:g}), so a lease is renewed twice "
                "before it lapses"
            )
        return self

    @property
    def replica(self) -> str:
        """This replica's id: `CHATOPS_REPLICA_ID`, else the host name."""
        return self.replica_id or socket.gethostname() or "chatops-bot"

    def secret_values(self) -> list[str]:
        """The secrets' values, for the log's redaction; nothing else should unwrap them here."""
        secrets = (self.slack_bot_token, self.slack_signing_secret, self.slack_app_token)
        values = [s.get_secret_value() for s in secrets if s is not None]
        if self.database_url is not None:
            password = urlsplit(self.database_url.get_secret_value()).password
            values += [password] if password else []
        return values

    @property
    def database(self) -> Path | str:
        """What the store opens: the PostgreSQL URL when one is set, else the SQLite file."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return self.db_path

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    @property
    def metrics_apart(self) -> bool:
        """`/metrics` has a port of its own."""
        return self.metrics_port is not None and self.metrics_port != self.port


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


def _read(name: str, source: Mapping[str, str], env_file: str | None) -> str | None:
    value = source.get(name)
    if value is None and env_file is not None and Path(env_file).is_file():
        value = dotenv_values(env_file).get(name)
    return value or None


def slack_from_env(
    environ: Mapping[str, str] | None = None, *, env_file: str | None = ".env"
) -> tuple[SecretStr, str] | None:
    """The bot token and Slack API URL when a token is set (environment, then `env_file`):
    enough for `check-config` to ask Slack about the config's user groups."""
    source = dict(os.environ if environ is None else environ)
    token = _read(ENV_NAMES["slack_bot_token"], source, env_file)
    if token is None:
        return None
    url = _read(ENV_NAMES["slack_api_url"], source, env_file) or SLACK_API_URL_DEFAULT
    return SecretStr(token), url if url.endswith("/") else url + "/"


def db_path_from_env(
    environ: Mapping[str, str] | None = None, *, env_file: str | None = ".env"
) -> Path:
    """`CHATOPS_DB` (from `environ`, then `env_file`): `backup` needs no Slack settings."""
    source = dict(os.environ if environ is None else environ)
    value = _read(ENV_NAMES["db_path"], source, env_file)
    default: Path = Settings.model_fields["db_path"].default
    return Path(value) if value else default


def database_from_env(
    environ: Mapping[str, str] | None = None, *, env_file: str | None = ".env"
) -> Path | str:
    """`CHATOPS_DATABASE_URL` when set, else `CHATOPS_DB` (environment, then `env_file`):
    what the doctor checks, without needing the Slack settings."""
    source = dict(os.environ if environ is None else environ)
    url = _read(ENV_NAMES["database_url"], source, env_file)
    return url if url else db_path_from_env(environ, env_file=env_file)


def config_path_from_env(
    environ: Mapping[str, str] | None = None, *, env_file: str | None = ".env"
) -> Path:
    """`CHATOPS_CONFIG` (from `environ`, then `env_file`), without needing the Slack settings.

    `check-config` runs where no Slack token is set, so it cannot go through `load_settings`.
    """
    source = dict(os.environ if environ is None else environ)
    value = _read(ENV_NAMES["config_path"], source, env_file)
    default: Path = Settings.model_fields["config_path"].default
    return Path(value) if value else default


def use_env_file(path: Path) -> None:
    """Put the variables of `path` (a `.env`-style file) into this process's environment, over
    what is there: `chatops-bot doctor --env-file` checks another setup, such as the sandbox's,
    and boto3 reads its endpoint and credentials from the environment."""
    if not path.is_file():
        raise SettingsError([f"--env-file: {path} does not exist"])
    os.environ.update({k: v for k, v in dotenv_values(path).items() if v is not None})
