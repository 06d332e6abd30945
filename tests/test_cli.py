"""The `chatops-bot` command: `check-config` and the reasons `serve` refuses to start."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from bot.logs import configure_logging
from bot.main import EXIT_BAD_CONFIG, main
from tests.fakes.slack_api import FakeSlack

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "chatops.example.toml"

TOKEN = "xoxb-1111-2222-secretbottoken"
SIGNING = "signing-secret-0123456789abcdef"


@pytest.fixture(autouse=True)
def _in_empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No developer's .env, chatops.toml or chatops.db is read: the CLI runs in an empty dir."""
    monkeypatch.chdir(tmp_path)


def _broken_example(tmp_path: Path, old: str, new: str) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text, f"the example no longer contains {old!r}; update this test"
    path = tmp_path / "broken.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


class TestCheckConfig:
    def test_the_example_config_passes_and_prints_a_summary(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        status = main(["check-config", str(EXAMPLE)])

        out = capsys.readouterr().out
        assert status == 0
        assert out.splitlines()[0] == f"{EXAMPLE}: OK"
        assert "2 environments:" in out
        assert "production: cluster skillancer-prod (us-east-1), 2 approvals" in out
        assert "promotes from staging" in out
        assert "8 services: api-gateway, auth-svc, market-svc" in out

    def test_the_summary_says_what_a_recent_failure_in_the_source_does(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = _broken_example(
            tmp_path,
            'promote_from = "staging"',
            'promote_from = "staging"\nrefuse_failed_in_source = true',
        )

        main(["check-config", str(EXAMPLE)])
        warns = capsys.readouterr().out
        main(["check-config", str(path)])
        refuses = capsys.readouterr().out

        expected = "versions that failed or were rolled back in staging in the last 24h"
        assert f"warns of {expected}" in warns
        assert f"refuses {expected}" in refuses
        assert f"refuses {expected}" not in warns

    @pytest.mark.parametrize(
        ("old", "new", "named"),
        [
            pytest.param(
                'region = "us-east-1"\nrequired_approvals = 0',
                'regoin = "us-east-1"\nrequired_approvals = 0',
                ["environments.staging.regoin", "Extra inputs are not permitted"],
                id="unknown key",
            ),
            pytest.param(
                'interval = "15s"',
                'interval = "5 minutes"',
                ["environments.staging.health.interval", "'5 minutes' is not a duration"],
                id="bad duration",
            ),
            pytest.param(
                'promote_from = "staging"',
                'promote_from = "stagin"',
                ["environments.production.promote_from", "'stagin'", "not an environment"],
                id="unknown promote_from",
            ),
            pytest.param(
                'approvers = ["S0DEVOPSLEADS", "U0BACKENDLEAD"]',
                "approvers = []",
                ["environments.production", "required_approvals is 2 but approvers is empty"],
                id="approvals without approvers",
            ),
            pytest.param(
                "U0BACKENDLEAD",
                "alice",
                ["environments.production", "'alice' is not a Slack user ID"],
                id="bad Slack ID",
            ),
            pytest.param(
                "[environments.production]",
                "[environments.production",
                ["not valid TOML", "line 22"],
                id="invalid TOML",
            ),
            pytest.param(
                "max_parallel = 4",
                "max_parallel = 0",
                ["environments.staging.rollout.max_parallel", "greater than or equal to 1"],
                id="out of range",
            ),
            pytest.param(
                'staging = "http://api-gateway',
                'staging = "api-gateway',
                ["services.api-gateway", "health_url.staging must start with http://"],
                id="health URL without scheme",
            ),
            pytest.param(
                "[services.audit-svc]",
                "[services.Audit]",
                ["'Audit' cannot be a name"],
                id="bad service name",
            ),
            pytest.param(
                'region = "us-east-1"\nrequired_approvals = 0',
                'region = "us-east-1"\nrequired_approvals = 0\nrefuse_failed_in_source = true',
                ["environments.staging", "refuse_failed_in_source is set but promote_from is not"],
                id="refusal without a source",
            ),
        ],
    )
    def test_a_broken_config_exits_2_and_names_the_key(
        self,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        old: str,
        new: str,
        named: list[str],
    ) -> None:
        path = _broken_example(tmp_path, old, new)

        status = main(["check-config", str(path)])

        err = capsys.readouterr().err
        assert status == EXIT_BAD_CONFIG
        assert err.splitlines()[0] == f"{path}: invalid config"
        assert [n for n in named if n not in err] == []

    def test_a_bad_slack_id_names_the_approvers_key(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = _broken_example(tmp_path, "U0BACKENDLEAD", "alice")

        main(["check-config", str(path)])

        assert "environments.production.approvers" in capsys.readouterr().err

    def test_a_missing_file_exits_2_and_says_how_to_start(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        status = main(["check-config", str(tmp_path / "nope.toml")])

        err = capsys.readouterr().err
        assert status == EXIT_BAD_CONFIG
        assert "nope.toml: invalid config" in err
        assert "file not found (copy chatops.example.toml to start)" in err

    def test_without_a_path_it_checks_chatops_toml_in_the_working_directory(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        (tmp_path / "chatops.toml").write_text(EXAMPLE.read_text(encoding="utf-8"))

        status = main(["check-config"])

        assert status == 0
        assert capsys.readouterr().out.startswith("chatops.toml: OK")

    def test_without_a_path_it_follows_chatops_config(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("CHATOPS_CONFIG", str(EXAMPLE))

        status = main(["check-config"])

        assert status == 0
        assert capsys.readouterr().out.startswith(f"{EXAMPLE}: OK")


class TestCheckConfigAsksSlackAboutUserGroups:
    """With a bot token (the environment or .env) it asks Slack about each user group."""

    async def test_a_group_slack_lacks_is_a_warning_naming_the_keys(
        self, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("SLACK_API_URL", slack.api_url)

        status = await asyncio.to_thread(main, ["check-config", str(EXAMPLE)])

        captured = capsys.readouterr()
        assert status == 0
        assert captured.out.startswith(f"{EXAMPLE}: OK")
        assert captured.err.splitlines() == [
            "warning: Slack has no user group S0DEVOPSLEADS (named in "
            "environments.production.approvers, environments.production.rollbackers): no one "
            "acts through it. Fix the ID, or create the group in Slack.",
            "warning: Slack has no user group S0ONCALL (named in "
            "environments.production.rollbackers): no one acts through it. Fix the ID, or "
            "create the group in Slack.",
        ]
        assert TOKEN not in captured.out + captured.err

    async def test_groups_slack_knows_are_listed_as_found(
        self,
        slack: FakeSlack,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        path = _broken_example(tmp_path, '"S0DEVOPSLEADS", "U0BACKENDLEAD"', '"S0LEADS"')
        path.write_text(path.read_text().replace('"S0ONCALL", "S0DEVOPSLEADS"', '"S0LEADS"'))
        monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("SLACK_API_URL", slack.api_url)

        status = await asyncio.to_thread(main, ["check-config", str(path)])

        captured = capsys.readouterr()
        assert status == 0
        assert "user groups: S0LEADS found in Slack" in captured.out
        assert captured.err == ""

    def test_without_a_token_it_says_the_groups_were_not_checked(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        status = main(["check-config", str(EXAMPLE)])

        assert status == 0
        assert (
            "user groups S0DEVOPSLEADS, S0ONCALL: not checked against Slack (set "
            "SLACK_BOT_TOKEN to check them)" in capsys.readouterr().out
        )


class TestServeRefusesToStart:
    def test_without_a_bot_token_it_names_every_variable_to_set(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        status = main(["serve"])

        err = capsys.readouterr().err
        assert status == EXIT_BAD_CONFIG
        assert err.splitlines()[:2] == [
            "chatops-bot cannot start:",
            "  SLACK_BOT_TOKEN: is not set",
        ]
        assert "SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN (Socket Mode)" in err

    def test_http_mode_without_a_signing_secret_says_why_it_is_needed(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)

        status = main(["serve"])

        err = capsys.readouterr().err
        assert status == EXIT_BAD_CONFIG
        assert "SLACK_SIGNING_SECRET: is not set" in err
        assert "verify that requests come from Slack" in err
        assert "set SLACK_APP_TOKEN to use Socket Mode instead" in err

    def test_a_bot_token_from_dotenv_counts(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        (tmp_path / ".env").write_text(f"SLACK_BOT_TOKEN={TOKEN}\n", encoding="utf-8")

        status = main(["serve"])

        err = capsys.readouterr().err
        assert status == EXIT_BAD_CONFIG
        assert "SLACK_BOT_TOKEN" not in err
        assert "SLACK_SIGNING_SECRET: is not set" in err

    @pytest.mark.parametrize(
        ("name", "value"),
        [("PORT", "99999"), ("PORT", "web"), ("SLACK_API_URL", "slack.com/api")],
    )
    def test_a_bad_setting_is_named(
        self,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
        name: str,
        value: str,
    ) -> None:
        monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING)
        monkeypatch.setenv(name, value)

        status = main(["serve"])

        err = capsys.readouterr().err
        assert status == EXIT_BAD_CONFIG
        assert err.splitlines()[1].startswith(f"  {name}")

    def test_a_missing_config_file_is_named_through_chatops_config(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING)

        status = main(["serve"])

        err = capsys.readouterr().err
        assert status == EXIT_BAD_CONFIG
        assert "CHATOPS_CONFIG (chatops.toml): file not found" in err

    def test_a_broken_config_file_names_the_key(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = _broken_example(tmp_path, 'interval = "15s"', 'interval = "5 minutes"')
        monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING)
        monkeypatch.setenv("CHATOPS_CONFIG", str(path))

        status = main(["serve"])

        assert status == EXIT_BAD_CONFIG
        assert "environments.staging.health.interval" in capsys.readouterr().err

    def test_refusing_to_start_prints_no_secret_and_creates_no_database(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("PORT", "0")

        main(["serve"])

        captured = capsys.readouterr()
        assert TOKEN not in captured.out + captured.err
        assert not (tmp_path / "chatops.db").exists()


def test_no_subcommand_prints_usage_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([])

    assert caught.value.code == 2
    assert "{serve,check-config,backup,migrate-db,iam-policy,doctor}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "status", "stream", "expected"),
    [
        (["serve"], EXIT_BAD_CONFIG, "stderr", "SLACK_BOT_TOKEN: is not set"),
        (["check-config", str(EXAMPLE)], 0, "stdout", "8 services"),
    ],
)
def test_the_command_behaves_the_same_in_a_clean_process(
    tmp_path: Path, args: list[str], status: int, stream: str, expected: str
) -> None:
    """What `make run` does on a fresh machine: no Slack variables, nothing but PATH and HOME."""
    code = f"import sys; from bot.main import main; sys.exit(main({args!r}))"

    result = subprocess.run(  # noqa: S603 - our own interpreter and a fixed script
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == status
    assert expected in getattr(result, stream)


def test_the_scheduler_says_nothing_at_info_for_each_sweep_but_still_warns() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("INFO")
        executor = logging.getLogger("apscheduler.executors.default")
        assert not executor.isEnabledFor(logging.INFO)
        assert executor.isEnabledFor(logging.WARNING)
        assert logging.getLogger("chatops").isEnabledFor(logging.INFO)
        configure_logging("DEBUG")
        assert executor.isEnabledFor(logging.DEBUG)
    finally:
        logging.getLogger("apscheduler").setLevel(logging.NOTSET)
        logging.getLogger("slack_bolt").setLevel(logging.NOTSET)
        root.handlers[:] = handlers
        root.setLevel(level)
