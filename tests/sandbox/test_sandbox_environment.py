"""The sandbox's environment: real credentials are found by name, `make run` finds a bot token
where `serve` would, and boto3 reaches only the local moto server while the sandbox runs."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pytest

from sandbox.environment import bot_token_configured, isolated, real_credentials
from sandbox.launch import SANDBOX, SERVE, main


def test_real_credentials_are_named_never_shown() -> None:
    found = real_credentials({"SLACK_BOT_TOKEN": "xoxb-real", "AWS_PROFILE": "prod", "PATH": "/"})

    assert found == ["SLACK_BOT_TOKEN", "AWS_PROFILE"]


def test_empty_variables_are_not_credentials() -> None:
    assert real_credentials({"SLACK_BOT_TOKEN": "", "AWS_ACCESS_KEY_ID": ""}) == []


@pytest.mark.parametrize(
    ("environ", "dotenv", "configured"),
    [
        ({}, None, False),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, None, True),
        ({}, "SLACK_BOT_TOKEN=xoxb-1\n", True),
        ({}, 'export SLACK_BOT_TOKEN="xoxb-1"\n', True),
        ({}, "SLACK_BOT_TOKEN=\nSLACK_SIGNING_SECRET=x\n", False),
    ],
)
def test_make_run_finds_a_bot_token_in_the_environment_or_dotenv(
    tmp_path: Path, environ: dict[str, str], dotenv: str | None, configured: bool
) -> None:
    env_file = tmp_path / ".env"
    if dotenv is not None:
        env_file.write_text(dotenv, encoding="utf-8")

    assert bot_token_configured(environ, env_file=env_file) is configured


def test_while_isolated_boto3_reaches_only_the_given_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECS", "https://ecs.us-east-1.amazonaws.com")
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-real")

    with isolated("http://127.0.0.1:9", region="us-east-1", nowhere=tmp_path / "none"):
        client = boto3.session.Session().client("ecs", region_name="us-east-1")
        inside = dict(os.environ)  # noqa: TID251 - what the sandbox set

    assert client.meta.endpoint_url == "http://127.0.0.1:9"
    assert "AWS_PROFILE" not in inside
    assert "SLACK_APP_TOKEN" not in inside
    assert inside["MOTO_ECS_SERVICE_RUNNING"] == "2"


def test_isolation_restores_the_environment_afterwards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "production")
    before = dict(os.environ)  # noqa: TID251 - what it must restore

    with isolated("http://127.0.0.1:9", region="us-east-1", nowhere=tmp_path / "none"):
        pass

    assert dict(os.environ) == before  # noqa: TID251


def test_make_run_without_a_token_says_it_starts_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    status = main(["--example", str(tmp_path / "missing.toml")])

    err = capsys.readouterr().err
    assert err.splitlines()[0] == SANDBOX
    assert status == 2  # the sandbox then refused: the example it is made from is missing
    assert "missing.toml is missing" in err


def test_make_run_with_a_token_in_dotenv_runs_serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("SLACK_BOT_TOKEN=xoxb-1-2-secret\n", encoding="utf-8")

    status = main([])

    err = capsys.readouterr().err
    assert err.splitlines()[0] == SERVE
    assert status == 2  # serve refuses: HTTP mode needs a signing secret
    assert "SLACK_SIGNING_SECRET: is not set" in err
    assert "xoxb-1-2-secret" not in err
