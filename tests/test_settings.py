"""Process settings: defaults, one line per bad variable, secrets that never print."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.settings import (
    ENV_NAMES,
    SLACK_API_URL_DEFAULT,
    Settings,
    SettingsError,
    config_path_from_env,
    load_settings,
)

TOKEN = "xoxb-1111-2222-secretbottoken"
SIGNING = "signing-secret-0123456789abcdef"
APP_TOKEN = "xapp-1-A111-222-secretapptoken"


def _load(**env: str) -> Settings:
    return load_settings({"SLACK_BOT_TOKEN": TOKEN, **env}, env_file=None)


def _problems(**env: str) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_settings(env, env_file=None)
    return caught.value.lines


def test_only_the_bot_token_is_required_and_the_rest_has_defaults() -> None:
    settings = _load()

    assert (
        settings.slack_api_url,
        settings.config_path,
        settings.db_path,
        settings.port,
        settings.slack_signing_secret,
        settings.slack_app_token,
    ) == (SLACK_API_URL_DEFAULT, Path("chatops.toml"), Path("chatops.db"), 3000, None, None)


def test_a_missing_bot_token_is_named() -> None:
    assert _problems() == ["SLACK_BOT_TOKEN: is not set"]


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("PORT", "0", "greater than or equal to 1"),
        ("PORT", "65536", "less than or equal to 65535"),
        ("PORT", "http", "valid integer"),
        ("CHATOPS_METRICS_PORT", "0", "greater than or equal to 1"),
        ("CHATOPS_METRICS_PORT", "metrics", "valid integer"),
        ("SLACK_API_URL", "slack.com/api", "must start with http:// or https://"),
        ("SLACK_API_URL", "ftp://slack.example/api/", "must start with http:// or https://"),
        ("CHATOPS_SHUTDOWN_GRACE_S", "-1", "greater than or equal to 0"),
        ("CHATOPS_SWEEP_INTERVAL_S", "0", "greater than 0"),
        ("CHATOPS_SWEEP_INTERVAL_S", "soon", "valid number"),
    ],
)
def test_a_bad_value_is_reported_on_one_line_naming_the_variable(
    name: str, value: str, reason: str
) -> None:
    lines = _problems(SLACK_BOT_TOKEN=TOKEN, **{name: value})

    assert len(lines) == 1
    assert lines[0].startswith(name)
    assert reason in lines[0]


def test_every_bad_variable_gets_its_own_line() -> None:
    lines = _problems(PORT="x", SLACK_API_URL="slack.com", CHATOPS_SHUTDOWN_GRACE_S="-5")

    assert [line.split(":")[0] for line in lines] == [
        "SLACK_BOT_TOKEN",
        "SLACK_API_URL",
        "PORT",
        "CHATOPS_SHUTDOWN_GRACE_S",
    ]


def test_settings_errors_never_quote_the_slack_credentials() -> None:
    lines = _problems(SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SIGNING, PORT="x")

    assert not any(TOKEN in line or SIGNING in line for line in lines)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:8765/api/", "http://127.0.0.1:8765/api/"),
        ("http://127.0.0.1:8765/api", "http://127.0.0.1:8765/api/"),
        ("https://slack.com/api", "https://slack.com/api/"),
    ],
)
def test_the_slack_api_url_always_ends_with_a_slash(given: str, expected: str) -> None:
    assert _load(SLACK_API_URL=given).slack_api_url == expected


@pytest.mark.parametrize(
    ("env", "socket_mode"),
    [
        ({}, False),
        ({"SLACK_SIGNING_SECRET": SIGNING}, False),
        ({"SLACK_APP_TOKEN": APP_TOKEN}, True),
        ({"SLACK_APP_TOKEN": APP_TOKEN, "SLACK_SIGNING_SECRET": SIGNING}, True),
    ],
)
def test_an_app_level_token_selects_socket_mode(env: dict[str, str], socket_mode: bool) -> None:
    assert _load(**env).socket_mode is socket_mode


def test_secrets_never_appear_in_repr_str_or_a_dump() -> None:
    settings = _load(SLACK_SIGNING_SECRET=SIGNING, SLACK_APP_TOKEN=APP_TOKEN)

    shown = " ".join(
        [repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump())]
    )

    assert [s for s in (TOKEN, SIGNING, APP_TOKEN) if s in shown] == []
    assert settings.slack_bot_token.get_secret_value() == TOKEN


@pytest.mark.parametrize("field", ["slack_bot_token", "slack_signing_secret", "slack_app_token"])
def test_slack_credentials_are_secret_strings(field: str) -> None:
    settings = _load(SLACK_SIGNING_SECRET=SIGNING, SLACK_APP_TOKEN=APP_TOKEN)

    assert isinstance(getattr(settings, field), SecretStr)


def test_a_dotenv_file_is_read(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"SLACK_BOT_TOKEN={TOKEN}\nPORT=4000\n", encoding="utf-8")

    settings = load_settings({}, env_file=str(env_file))

    assert (settings.slack_bot_token.get_secret_value(), settings.port) == (TOKEN, 4000)


def test_the_environment_wins_over_the_dotenv_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"SLACK_BOT_TOKEN={TOKEN}\nPORT=4000\n", encoding="utf-8")

    settings = load_settings({"PORT": "5000"}, env_file=str(env_file))

    assert settings.port == 5000


def test_every_setting_is_read_from_a_named_environment_variable() -> None:
    assert set(ENV_NAMES) == set(Settings.model_fields)


def test_variables_outside_the_settings_are_ignored() -> None:
    settings = _load(AWS_ENDPOINT_URL="http://127.0.0.1:5000", SOMETHING_ELSE="x")

    assert settings.port == 3000


@pytest.mark.parametrize(
    ("environ", "dotenv", "expected"),
    [
        ({}, None, "chatops.toml"),
        ({"CHATOPS_CONFIG": "env.toml"}, None, "env.toml"),
        ({}, "CHATOPS_CONFIG=dotenv.toml\n", "dotenv.toml"),
        ({"CHATOPS_CONFIG": "env.toml"}, "CHATOPS_CONFIG=dotenv.toml\n", "env.toml"),
    ],
)
def test_the_config_path_is_found_without_any_slack_credentials(
    tmp_path: Path, environ: dict[str, str], dotenv: str | None, expected: str
) -> None:
    env_file = tmp_path / ".env"
    if dotenv is not None:
        env_file.write_text(dotenv, encoding="utf-8")

    assert config_path_from_env(environ, env_file=str(env_file)) == Path(expected)


def test_a_database_url_selects_postgresql_and_its_password_is_a_secret() -> None:
    url = "postgresql://bot:pg-pass-123@db.internal:5432/chatops"

    settings = _load(CHATOPS_DATABASE_URL=url, CHATOPS_DB="/data/chatops.db")

    assert settings.database == url
    shown = " ".join([repr(settings), str(settings), settings.model_dump_json()])
    assert "pg-pass-123" not in shown
    # The log redacts the password wherever it would appear.
    assert "pg-pass-123" in settings.secret_values()


def test_without_a_database_url_the_sqlite_file_is_used() -> None:
    assert _load(CHATOPS_DB="/data/chatops.db").database == Path("/data/chatops.db")
    assert _load().database == Path("chatops.db")


def test_a_database_url_of_another_engine_is_refused_without_quoting_it() -> None:
    lines = _problems(SLACK_BOT_TOKEN=TOKEN, CHATOPS_DATABASE_URL="mysql://bot:pw-9@db/x")

    assert lines == ["CHATOPS_DATABASE_URL: must start with postgresql:// (the PostgreSQL backend)"]
