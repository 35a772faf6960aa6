"""The README's swarm lines work in the order given, from a fresh copy (issue 13, item 6)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.cli import truepar

ROOT = Path(__file__).resolve().parents[2]


def _swarm_lines() -> list[list[str]]:
    block = (ROOT / "README.md").read_text().split("## Parallel agents, safely", 1)[1]
    block = block.split("```sh\n", 1)[1].split("```", 1)[0]
    lines = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    wanted = ("python scenarios/swarm/", "truepar lint scenarios/swarm/", "truepar swarm ")
    return [shlex.split(line) for line in lines if line.startswith(wanted)]


@pytest.mark.usefixtures("git_identity")
def test_the_readme_swarm_lines_run_in_their_order(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    lines = _swarm_lines()
    assert [argv[:2] for argv in lines] == [
        ["python", "scenarios/swarm/make_repo.py"],
        ["truepar", "lint"],
        ["truepar", "swarm"],
    ]
    codes = []
    for argv in lines:
        if argv[0] == "python":
            done = subprocess.run(
                [sys.executable, *argv[1:]], cwd=tmp_path, capture_output=True, text=True,
                timeout=120, check=False,
            )  # fmt: skip
        else:
            done = truepar(*argv[1:], cwd=tmp_path, timeout=300)
        assert "Traceback" not in done.stderr, done.stderr
        codes.append(done.returncode)
    # make_repo and lint succeed; the swarm reports its one conflict with exit 1, as it says.
    assert codes == [0, 0, 1], codes
