"""The docs say what the code does (STYLE §6.6): commands, variables, messages, links."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from bot.main import describe, main
from bot.settings import ENV_NAMES
from bot.usage import usage_text
from commands.deploy.parse import usage
from commands.rollback.parse import usage as rollback_usage
from pipeline.kernel.config import Config, load_config

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
COMMANDS = ROOT / "docs" / "commands.md"
EXAMPLE = ROOT / "chatops.example.toml"

DEPLOY_FORMS = {
    "deploy": "/deploy <environment> <service[,service...]|all> [version]",
    "dry run": "/deploy <environment> <services|all> [version] --dry-run",
    "skip staging": '/deploy <environment> <services|all> <version> --skip-staging "<reason>"',
    "break glass": '/deploy <environment> <services|all> [version] --break-glass "<reason>"',
    "status": "/deploy status <deployment-id> [--json]",
    "status of an environment": "/deploy status <environment>",
    "history": "/deploy history [environment]",
    "stats": "/deploy stats [environment] [7d|30d|90d] [service]",
    "lock": "/deploy lock <environment> [reason] [for <duration>]",
    "unlock": "/deploy unlock <environment>",
    "restore": "/deploy restore-db <deployment-id>",
    "help": "/deploy help",
}

_MD_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _doc() -> str:
    """docs/commands.md with the pipes its tables escape put back."""
    return _read(COMMANDS).replace("\\|", "|")


@pytest.fixture
def example() -> Config:
    return load_config(EXAMPLE)


@pytest.mark.parametrize(("subcommand", "form"), DEPLOY_FORMS.items())
def test_every_deploy_subcommand_is_in_the_help_and_in_the_commands_doc(
    example: Config, subcommand: str, form: str
) -> None:
    assert f"`{form}`" in usage_text(usage(example)), f"/deploy help lacks {subcommand}"
    assert f"`{form}`" in _doc(), f"docs/commands.md lacks {subcommand}"


def test_every_form_the_help_lists_is_documented(example: Config) -> None:
    forms = re.findall(r"`(/deploy[^`]*)`", usage_text(usage(example)))

    assert set(forms) == set(DEPLOY_FORMS.values())
    assert [f for f in forms if f"`{f}`" not in _doc()] == []


def test_every_rollback_form_the_help_lists_is_documented(example: Config) -> None:
    forms = re.findall(r"`(/rollback[^`]*)`", usage_text(rollback_usage(example)))
    doc = _doc()

    assert "/rollback <environment> <service[,service...]|all> [version] [reason...]" in forms
    assert [f for f in forms if f not in doc] == []


def test_the_commands_doc_has_an_incident_section_linking_its_reference() -> None:
    text = _read(COMMANDS)

    assert "## `/incident`" in text
    assert "(incidents.md)" in text


@pytest.mark.parametrize("name", sorted(ENV_NAMES.values()))
def test_every_environment_variable_is_in_the_readme(name: str) -> None:
    assert f"| `{name}` |" in _read(README)


@pytest.mark.parametrize("name", ["AWS_ENDPOINT_URL", ".env", "GET /healthz", "manifest.yml"])
def test_the_readme_mentions_each_essential_topic(name: str) -> None:
    assert name in _read(README)


def test_the_readme_shows_the_real_check_config_summary(example: Config) -> None:
    summary = describe(example, Path("chatops.example.toml"))

    assert f"```text\n{summary}\n```" in _read(README)


def test_the_readme_quotes_what_serve_says_without_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)

    main(["serve"])

    assert f"```text\n{capsys.readouterr().err}```" in _read(README)


def test_the_readme_quotes_what_serve_says_without_a_signing_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-docs")

    main(["serve"])

    assert f"```text\n{capsys.readouterr().err}```" in _read(README)


def test_the_readme_has_the_section_the_startup_error_points_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    main(["serve"])

    section = re.search(r"See README\.md, '([^']+)'", capsys.readouterr().err)

    assert section is not None
    assert f"\n## {section.group(1)}\n" in _read(README)


@pytest.mark.parametrize(
    "doc",
    [README, ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))],
    ids=lambda p: p.relative_to(ROOT).as_posix(),
)
def test_relative_links_point_at_files_that_exist(doc: Path) -> None:
    links = [link for link in _MD_LINK.findall(_read(doc)) if "://" not in link]

    assert [link for link in links if not (doc.parent / link).exists()] == []


def test_the_changelog_has_an_unreleased_section_listing_the_commands() -> None:
    unreleased = _read(ROOT / "CHANGELOG.md").split("## [Unreleased]", 1)[1].split("\n## ", 1)[0]

    assert [
        f for f in DEPLOY_FORMS.values() if f.split(" <")[0].split(" [")[0] not in unreleased
    ] == []
    assert "chatops-bot check-config" in unreleased
    assert "/healthz" in unreleased


def test_the_procfile_runs_the_console_script_pyproject_declares() -> None:
    scripts = tomllib.loads(_read(ROOT / "pyproject.toml"))["project"]["scripts"]

    assert _read(ROOT / "Procfile") == "web: chatops-bot serve\n"
    # sandbox/cli.py answers `sandbox` and hands `serve` (and the rest) to bot.main.main.
    assert scripts["chatops-bot"] == "sandbox.cli:main"
