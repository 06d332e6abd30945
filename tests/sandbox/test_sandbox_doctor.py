"""`chatops-bot doctor --env-file .sandbox/doctor.env` runs clean against the running sandbox
(issue 19, point 3). Real time, so marked slow."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.environment import DOCTOR_ENV
from sandbox.stack import Sandbox

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


async def test_the_doctor_finds_no_problem_in_the_running_sandbox(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    env_file = sandbox.config_path.parent / DOCTOR_ENV
    code = "import sys; from bot.main import main; sys.exit(main(sys.argv[1:]))"

    result = await asyncio.to_thread(
        subprocess.run,  # a process of its own: the doctor's environment is the file's
        [sys.executable, "-c", code, "doctor", "--json", "--env-file", str(env_file)],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    report = json.loads(result.stdout)
    assert [c for c in report["checks"] if c["verdict"] == "fail"] == []
    assert (result.returncode, report["ok"]) == (0, True)
    texts = [c["text"] for c in report["checks"]]
    assert "the token has every scope manifest.yml asks for (10 granted)." in texts
    assert any(t.startswith("production: listener arn:aws:elasticloadbalancing") for t in texts)
