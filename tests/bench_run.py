"""Running a benchmark script from a test: briefly, as a child of this interpreter.

The scripts' figures are not checked (a benchmark measures, a test does not time), so their
processes (the script, and the bot, moto and health servers it starts) are not measured for
coverage either: the code they run is measured by the tests that check it, and tracing them
cost the suite about a third of their CPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UNMEASURED = ("COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START")


def run_bench(script: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """`scripts/<script>` with `args`, from the repository's root; its output captured."""
    environ = os.environ  # noqa: TID251 - the child's environment, less coverage's variables
    env = {k: v for k, v in environ.items() if k not in UNMEASURED}
    return subprocess.run(  # noqa: S603 - our own interpreter and a fixed script
        [sys.executable, str(ROOT / "scripts" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
        env=env,
    )
