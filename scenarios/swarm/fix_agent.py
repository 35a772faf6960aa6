"""A small command-line "agent" for the swarm scenario: it reads its instruction on stdin,
edits one file in its working directory (its own worktree), commits, and prints a final JSON
line with what it did — as a real coding agent would, minus the model.

Instruction (one line): ``FILE: OLD => NEW`` replaces the first line containing OLD with NEW.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

IDENTITY = [
    "-c",
    f"user.name=agent {os.environ.get('TRUEPAR_AGENT', '?')}",
    "-c",
    "user.email=agent@localhost",
]


def main() -> int:
    instruction = sys.stdin.read().strip()
    target, _, change = instruction.partition(":")
    old, _, new = change.partition("=>")
    path = Path(target.strip())
    print(f"reading {path}", flush=True)
    lines = path.read_text().splitlines(keepends=True)
    for i, line in enumerate(lines):
        if old.strip() in line:
            lines[i] = new.strip() + "\n"
            break
    else:
        print(json.dumps({"changed": None, "reason": f"{old.strip()!r} not found"}))
        return 1
    time.sleep(float(os.environ.get("AGENT_THINK_S", "0.3")))  # the "thinking"
    path.write_text("".join(lines))
    subprocess.run(["git", *IDENTITY, "add", str(path)], check=True)
    message = f"{os.environ.get('TRUEPAR_AGENT')}: {new.strip()}"
    subprocess.run(["git", *IDENTITY, "commit", "-q", "-m", message], check=True)
    print(f"committed {path}", flush=True)
    print(json.dumps({"changed": str(path), "line": new.strip()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
