"""Make the swarm scenario's repository: a small git project three agents will change.

    python scenarios/swarm/make_repo.py [FOLDER]     (default: .truepar/swarm-demo/repo)

Starts from scratch every time (the folder and its ``-worktrees`` sibling are removed first),
so the scenario always shows the same thing: two agents merge, the third conflicts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

IDENTITY = ["-c", "user.name=scenario", "-c", "user.email=scenario@localhost"]
FILES = {
    "README.md": "# calc\n\nA tiny calculator the agents will fix.\n",
    "calc.py": "def add(a, b):\n    return a - b  # BUG\n\n\ndef mul(a, b):\n    return a * b\n",
    "docs/usage.md": "Usage: calc add 1 2\n",
}


def make(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(folder.parent / f"{folder.name}-worktrees", ignore_errors=True)
    folder.mkdir(parents=True)
    for name, text in FILES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull}
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "calc 0.1"]):
        subprocess.run(["git", *IDENTITY, *args], cwd=folder, check=True, env=env)
    return folder


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else ".truepar/swarm-demo/repo")
    print(make(target.resolve()))
