"""Real git for the agent tests, with an identity of its own on any machine."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

#: A fresh CI machine has no git config: every git (and agent) gets this identity, and the
#: developer's own config is kept out.
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Agent Tester",
    "GIT_AUTHOR_EMAIL": "agent@example.com",
    "GIT_COMMITTER_NAME": "Agent Tester",
    "GIT_COMMITTER_EMAIL": "agent@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str) -> str:
    """``git args`` in ``cwd``; its stdout, stripped. Raises on failure."""
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()
