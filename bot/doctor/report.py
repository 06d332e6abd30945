"""A doctor's finding, and the two ways of printing them (a line each, or JSON)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum


class Verdict(StrEnum):
    OK = "ok"
    FAIL = "fail"
    NOT_CHECKED = "not_checked"


MARKS = {Verdict.OK: "✅", Verdict.FAIL: "❌", Verdict.NOT_CHECKED: "➖"}


@dataclass(frozen=True)
class Finding:
    """One check: where (`area`), what was found, and for a failure the fix."""

    area: str
    verdict: Verdict
    text: str
    fix: str | None = None


def ok(area: str, text: str) -> Finding:
    return Finding(area, Verdict.OK, text)


def fail(area: str, text: str, fix: str) -> Finding:
    return Finding(area, Verdict.FAIL, text, fix)


def not_checked(area: str, text: str) -> Finding:
    return Finding(area, Verdict.NOT_CHECKED, text)


def failed(findings: Sequence[Finding]) -> bool:
    return any(f.verdict is Verdict.FAIL for f in findings)


def as_text(findings: Sequence[Finding]) -> str:
    lines = []
    for f in findings:
        line = f"{MARKS[f.verdict]} {f.area}: {f.text}"
        if f.fix:
            line += f" Fix: {f.fix}"
        lines.append(line)
    bad = sum(f.verdict is Verdict.FAIL for f in findings)
    lines.append(f"{bad} problem{'' if bad == 1 else 's'} found." if bad else "No problems found.")
    return "\n".join(lines)


def as_json(findings: Sequence[Finding]) -> str:
    return json.dumps(
        {"ok": not failed(findings), "checks": [asdict(f) for f in findings]},
        ensure_ascii=False,
        indent=2,
    )
