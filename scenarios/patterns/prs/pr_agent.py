"""A stand-in for a coding agent that prepares one pull request (no model, no network).

It reads its instruction on stdin, as ``truepar swarm`` sends it::

    file: shop/prices.py
    find: return int(
    replace:     return round(cents * (1 + TAX_RATE))
    scratch: NOTES.md          (optional: a file it writes and forgets to commit)

and, in its working directory (its own worktree), replaces the first line containing ``find``
with ``replace``, commits on the worktree's branch, and prints a final JSON line saying what it
changed: the way a headless agent hands back a structured answer. ``\\n`` in ``replace`` is a
line break.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

AGENT = os.environ.get("TRUEPAR_AGENT", "agent")
IDENTITY = ["-c", f"user.name=agent {AGENT}", "-c", "user.email=agent@localhost"]


def instruction(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip() if key.strip() != "replace" else value[1:]
    return fields


def main() -> int:
    task = instruction(sys.stdin.read())
    path = Path(task["file"])
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for i, line in enumerate(lines):
        if task["find"] in line:
            lines[i] = task["replace"].replace("\\n", "\n") + "\n"
            break
    else:
        print(json.dumps({"pr": AGENT, "changed": None, "why": f"{task['find']!r} not found"}))
        return 1
    print(f"editing {path}", flush=True)
    time.sleep(float(os.environ.get("AGENT_THINK_S", "0.2")))  # the model "thinking"
    path.write_text("".join(lines), encoding="utf-8")
    subprocess.run(["git", *IDENTITY, "add", str(path)], check=True)
    first = task["replace"].replace("\\n", "\n").strip().splitlines()[0]
    message = f"{AGENT}: {first[:60]}"
    subprocess.run(["git", *IDENTITY, "commit", "-q", "-m", message], check=True)
    if task.get("scratch"):
        Path(task["scratch"]).write_text("notes to self: check the examples\n", encoding="utf-8")
    print(json.dumps({"pr": AGENT, "changed": str(path), "commit": message}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
