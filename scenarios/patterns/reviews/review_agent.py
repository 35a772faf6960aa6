"""A stand-in for a reviewing agent (no model, no network): it reads, never writes.

    review_agent.py FOCUS        (FOCUS: bugs | style | docs)

It reads every ``*.py`` file under its working directory (the checkout under review), prints
one line per finding, and ends with one JSON line: ``{"approve": true/false, "FOCUS": [...]}``.
``truepar swarm`` parses that last line as the agent's result and, with ``aggregate = "vote"``,
decides each key by majority: ``approve`` is the question every reviewer answers.
"""

from __future__ import annotations

import ast
import json
import sys
import time
from pathlib import Path

MAX_LINE = 79


def bugs(path: Path, text: str) -> list[str]:
    found = []
    for n, line in enumerate(text.splitlines(), 1):
        if "# BUG" in line:
            found.append(f"{path}:{n}: marked as a bug: {line.split('# BUG', 1)[1].strip(': ')}")
        if "== None" in line or line.strip() == "except:":
            found.append(f"{path}:{n}: {line.strip()}")
    return found


def style(path: Path, text: str) -> list[str]:
    found = []
    for n, line in enumerate(text.splitlines(), 1):
        if len(line) > MAX_LINE:
            found.append(f"{path}:{n}: line longer than {MAX_LINE} characters")
        if line != line.rstrip() or "\t" in line:
            found.append(f"{path}:{n}: trailing whitespace or a tab")
    return found


def docs(path: Path, text: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(text)):
        public = isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name[0] != "_"
        if public and ast.get_docstring(node) is None:
            found.append(f"{path}:{node.lineno}: {node.name} has no docstring")
    return found


CHECKS = {"bugs": bugs, "style": style, "docs": docs}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in CHECKS:
        print(f"usage: review_agent.py {{{'|'.join(CHECKS)}}}", file=sys.stderr)
        return 2
    focus = argv[0]
    findings: list[str] = []
    for path in sorted(Path().rglob("*.py")):
        if ".git" not in path.parts:
            findings += CHECKS[focus](path, path.read_text(encoding="utf-8"))
    time.sleep(0.2)  # the model "thinking"
    for line in findings:
        print(line)
    print(json.dumps({"approve": not findings, focus: findings}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
