"""The layering rules of ARCHITECTURE.md that import-linter cannot express, checked on the AST."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imports(package: str) -> list[tuple[Path, str]]:
    found = []
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found += [(path, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((path, node.module))
                found += [(path, f"{node.module}.{alias.name}") for alias in node.names]
    return found


@pytest.mark.parametrize("package", ["commands", "pipeline", "store"])
def test_only_bot_imports_slack_or_serves_http(package: str) -> None:
    bad = [
        (p.relative_to(ROOT), m)
        for p, m in _imports(package)
        if m.split(".")[0] in ("slack_bolt", "slack_sdk") or m.startswith("aiohttp.web")
    ]

    assert bad == []


@pytest.mark.parametrize("package", ["bot", "commands", "pipeline", "store"])
def test_only_pipeline_aws_imports_boto3(package: str) -> None:
    aws = ROOT / "pipeline" / "aws"
    bad = [
        (p.relative_to(ROOT), m)
        for p, m in _imports(package)
        if m.split(".")[0] in ("boto3", "botocore") and aws not in p.parents
    ]

    assert bad == []


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("store", ("bot", "commands", "pipeline")),
        ("pipeline", ("bot", "commands")),
        ("commands", ("bot",)),
    ],
)
def test_imports_never_run_upward(package: str, forbidden: tuple[str, ...]) -> None:
    bad = [(p.relative_to(ROOT), m) for p, m in _imports(package) if m.split(".")[0] in forbidden]

    assert bad == []
