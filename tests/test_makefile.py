"""The Makefile's Python probe: quiet where pyenv shims answer for missing versions (issue 13)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_python_probe_prints_nothing_for_shims_without_a_python(tmp_path: Path) -> None:
    shims = tmp_path / "shims"
    shims.mkdir()
    for name in ("python3.13", "python3.12"):  # pyenv's shims for versions not installed
        shim = shims / name
        shim.write_text(f'#!/bin/sh\necho "pyenv: {name}: command not found" >&2\nexit 127\n')
        shim.chmod(0o755)
    real = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{shims}:{real}:/usr/bin:/bin"}
    env.pop("PYTHON", None)
    result = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "setup", "VENV=/nonexistent-venv"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert "pyenv" not in result.stderr and "command not found" not in result.stderr
    assert "-m venv" in result.stdout  # it found a Python >= 3.11 all the same
