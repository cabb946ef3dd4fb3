"""Running the ``faultgraph`` command line in a child process, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, db: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``faultgraph ARGS`` on the embedded store file ``db``; with ``check``, require exit code 0."""
    environment = {**os.environ, "FAULTGRAPH_DB": str(db), "FAULTGRAPH_STORE": "embedded"}
    result = subprocess.run(
        [sys.executable, "-m", "service", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=ROOT,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result
