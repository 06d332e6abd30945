"""The one sandbox module that reads or changes the process environment.

It finds real Slack and AWS credentials (so the sandbox refuses to start next to them unless told
to ignore them), tells `make run` whether a Slack bot token is configured, and points boto3 at the
local moto server for the sandbox's lifetime, restoring the environment afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from dotenv import dotenv_values

SLACK_CREDENTIALS: Final = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN")
AWS_CREDENTIALS: Final = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
)
BOT_VARIABLE: Final = SLACK_CREDENTIALS[0]
# Credentials moto accepts; they name no real account.
ACCESS_KEY: Final = "sandbox"
SECRET_KEY: Final = "sandbox-secret"  # noqa: S105 - moto's dummy credentials, not a secret
TASKS_PER_SERVICE: Final = 2


def real_credentials(environ: Mapping[str, str] | None = None) -> list[str]:
    """The names (never the values) of the Slack and AWS credentials set in `environ`."""
    env = os.environ if environ is None else environ
    return [name for name in (*SLACK_CREDENTIALS, *AWS_CREDENTIALS) if env.get(name)]


def bot_token_configured(
    environ: Mapping[str, str] | None = None, *, env_file: Path = Path(".env")
) -> bool:
    """True when `SLACK_BOT_TOKEN` is set in `environ` or in `env_file`, as `serve` reads them."""
    env = os.environ if environ is None else environ
    if env.get(BOT_VARIABLE):
        return True
    return env_file.is_file() and bool(dotenv_values(env_file).get(BOT_VARIABLE))


def _sandbox_values(endpoint: str, *, region: str, nowhere: Path) -> dict[str, str]:
    return {
        # Every AWS call of this process goes to moto, with credentials moto accepts.
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": region,
        # No profile, endpoint or credentials from ~/.aws are read.
        "AWS_CONFIG_FILE": str(nowhere),
        "AWS_SHARED_CREDENTIALS_FILE": str(nowhere),
        "AWS_EC2_METADATA_DISABLED": "true",
        # moto: services created from now on report their tasks as running.
        "MOTO_ECS_SERVICE_RUNNING": str(TASKS_PER_SERVICE),
        # moto: no public AMIs in EC2 (the sandbox runs no instance; its ALBs need a VPC only).
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
    }


@contextmanager
def isolated(endpoint: str, *, region: str, nowhere: Path) -> Iterator[None]:
    """Within the block, no Slack or AWS setting of the caller is in the environment, and boto3
    reaches only `endpoint`; the environment is restored afterwards.

    `nowhere` is a path that does not exist, used as boto3's config and credentials files.
    """
    saved = dict(os.environ)
    try:
        for name in list(os.environ):
            if name.startswith(("AWS_", "SLACK_", "MOTO_")):
                del os.environ[name]
        os.environ.update(_sandbox_values(endpoint, region=region, nowhere=nowhere))
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


DOCTOR_ENV: Final = "doctor.env"


def write_doctor_env(
    directory: Path,
    *,
    endpoint: str,
    region: str,
    slack_api_url: str,
    config_path: Path,
    db_path: Path,
    database_url: str | None = None,
) -> Path:
    """`directory/doctor.env`: what `chatops-bot doctor --env-file` needs to check the running
    sandbox (its Slack, its moto, its config and database). The local Slack takes any token."""
    values = {
        **_sandbox_values(endpoint, region=region, nowhere=directory / "no-aws"),
        "SLACK_BOT_TOKEN": "xoxb-sandbox-doctor",
        "SLACK_API_URL": slack_api_url,
        "CHATOPS_CONFIG": str(config_path),
    }
    if database_url is None:
        values["CHATOPS_DB"] = str(db_path)
    else:  # the replicas' PostgreSQL (`--replicas N`)
        values["CHATOPS_DATABASE_URL"] = database_url
    path = directory / DOCTOR_ENV
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    return path


def pg_bin() -> str | None:
    """`$PG_BIN`: a folder holding PostgreSQL's initdb and postgres, when set."""
    return os.environ.get("PG_BIN") or None


def child_environment(values: Mapping[str, str]) -> dict[str, str]:
    """The environment of a replica's process (`--replicas N`): this process's (within
    `isolated`, so AWS is moto), with none of the caller's Slack or chatops settings, and
    `values` on top."""
    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SLACK_", "CHATOPS_")) and name != "PORT"
    }
    return {**kept, **values}
