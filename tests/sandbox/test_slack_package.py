"""The sandbox stands apart. Its stand-ins play the outside world, so they import nothing of the
bot; only the modules that run the real bot inside the sandbox (`stack`, `cli`, `launch`) do.
Nothing in the sandbox needs what the bot does not ship with (no yaml, no test tools)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = ROOT / "sandbox"
WIRING = {SANDBOX / "stack.py", SANDBOX / "cli.py", SANDBOX / "launch.py"}


def _imported(paths: list[Path]) -> set[str]:
    found = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def _stand_ins() -> list[Path]:
    return [p for p in SANDBOX.rglob("*.py") if p not in WIRING]


@pytest.mark.parametrize("forbidden", ["bot", "commands", "pipeline", "store"])
def test_the_stand_ins_do_not_import_the_bot(forbidden: str) -> None:
    assert forbidden not in _imported(_stand_ins())


@pytest.mark.parametrize("forbidden", ["yaml", "pytest", "playwright", "tests"])
def test_nothing_in_the_sandbox_imports_what_the_product_does_not_ship(forbidden: str) -> None:
    assert forbidden not in _imported(list(SANDBOX.rglob("*.py")))


def test_the_wiring_modules_exist() -> None:
    """The list above names real files, so the first test checks what it says it checks."""
    assert all(p.is_file() for p in WIRING)
