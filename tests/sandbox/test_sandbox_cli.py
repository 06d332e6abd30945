"""`chatops-bot sandbox`: it refuses to start beside real credentials, serves the page from a
clean environment, and stops everything on Ctrl-C; `serve` keeps refusing without Slack."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from sandbox.cli import main

SCRIPT = Path(sys.executable).parent / "chatops-bot"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _in_empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_it_refuses_to_start_beside_real_credentials_and_names_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-real-1234")
    monkeypatch.setenv("AWS_PROFILE", "production")

    status = main(["sandbox"])

    err = capsys.readouterr().err
    assert status == 2
    assert "set here: SLACK_BOT_TOKEN, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE" in err
    assert "--ignore-credentials" in err
    assert "xoxb-real-1234" not in err
    assert "production" not in err


def test_told_to_ignore_credentials_it_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-real-1234")

    status = main(["sandbox", "--ignore-credentials", "--example", str(tmp_path / "none.toml")])

    assert status == 2  # it got as far as reading the example config
    assert "none.toml is missing" in capsys.readouterr().err


def test_serve_still_refuses_without_slack_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["serve"])

    assert status == 2
    assert "SLACK_BOT_TOKEN: is not set" in capsys.readouterr().err


def test_help_lists_the_sandbox_beside_the_bots_subcommands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])

    out = capsys.readouterr().out
    assert exited.value.code == 0
    assert "{serve,check-config,backup,migrate-db,iam-policy,doctor}" in out
    assert "sandbox             try the bot on this machine" in out


@pytest.mark.slow
def test_from_a_clean_environment_it_serves_the_page_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """What `make run` does on a fresh clone with no credentials, as its own process."""
    proc = subprocess.Popen(  # noqa: S603 - our own console script
        [str(SCRIPT), "sandbox", "--port", "0", "--dir", str(tmp_path / "sb")],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(7)]
        url = next(line.split()[1] for line in lines if line.startswith("Open "))
        with urllib.request.urlopen(url, timeout=10) as page:  # noqa: S310 - 127.0.0.1
            html = page.read().decode()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()

    assert url.startswith("http://127.0.0.1:")
    assert "<title>chatops-bot sandbox</title>" in html
    assert any("/deploy production all" in line for line in lines)
    assert proc.returncode == 0, err
    assert out.strip().endswith("Sandbox stopped.")
    assert "Traceback" not in err
    assert (tmp_path / "sb" / "chatops.toml").is_file()


def test_replicas_without_postgresql_installed_say_which_package_and_exit_non_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sandbox.postgres.DEBIAN", tmp_path / "no-postgresql")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("PG_BIN", raising=False)

    status = main(["sandbox", "--ignore-credentials", "--replicas", "2", "--port", "0"])

    err = capsys.readouterr().err
    assert status == 2
    assert "--replicas 2 needs PostgreSQL" in err
    assert "apt-get install postgresql" in err
    assert not (tmp_path / ".sandbox").exists()  # nothing was started


def test_replicas_must_be_a_small_positive_number(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["sandbox", "--replicas", "0"])

    assert exited.value.code == 2
    assert "--replicas: from 1 to 5, not 0" in capsys.readouterr().err
