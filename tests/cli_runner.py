"""Run the ``truepar`` command as a user does: a real subprocess, this interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def truepar(
    *args: str, cwd: Path | None = None, timeout: float = 300, columns: int = 160
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "truepar", *args],
        capture_output=True,
        check=False,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, "COLUMNS": str(columns)},
    )
