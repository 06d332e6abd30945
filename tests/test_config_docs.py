"""docs/configuration.md is generated from the code and must not go stale (STYLE §8.7)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from bot.settings import ENV_NAMES

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gen_config_docs.py"
DOC = ROOT / "docs" / "configuration.md"


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_config_docs", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_checked_in_configuration_doc_matches_the_code(gen: ModuleType) -> None:
    expected = gen.render()

    assert DOC.read_text(encoding="utf-8") == expected, (
        "docs/configuration.md is stale: run `.venv/bin/python scripts/gen_config_docs.py`"
    )


def test_the_generator_check_mode_passes_on_the_checked_in_doc(gen: ModuleType) -> None:
    assert gen.main(["--check"]) == 0


def test_every_setting_and_config_key_has_a_description(gen: ModuleType) -> None:
    """An empty cell in the generated doc means a field lacks `Field(description=...)`."""
    assert gen.undocumented() == []


@pytest.mark.parametrize("name", sorted(ENV_NAMES.values()))
def test_every_environment_variable_is_in_the_configuration_doc(name: str) -> None:
    assert f"`{name}`" in DOC.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "table",
    [
        "environments.<environment>",
        "environments.<environment>.health",
        "environments.<environment>.rollout",
        "services.<service>",
        "incidents",
        "incidents.severities.<severity>",
    ],
)
def test_every_config_table_has_a_section(table: str) -> None:
    assert f"### `[{table}]`" in DOC.read_text(encoding="utf-8")
