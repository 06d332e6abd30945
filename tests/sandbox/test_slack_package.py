"""The sandbox package stands apart: it plays the outside world, so it imports nothing of the
bot, and only what the bot ships with at run time (no yaml)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imported(package: str) -> set[str]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("forbidden", ["bot", "commands", "pipeline", "store", "yaml"])
def test_the_sandbox_does_not_import(forbidden: str) -> None:
    assert forbidden not in _imported("sandbox")
