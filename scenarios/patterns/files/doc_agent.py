"""A stand-in for a documentation agent (no model, no network): one module in, one page out.

Its instruction comes on stdin, as ``truepar run`` sends an ``agent`` op's prompt:

    shop/prices.py -> docs/prices.md     write the page of one module (reads it with ast)
    index docs -> docs/index.md          write the index of every page already in docs/

It writes exactly the one file its instruction names, creating ``docs/`` if needed, and prints
a final JSON line with what it wrote. It never commits: on a shared branch the git index is one
more shared file, so the plan commits once, after every writer (see files.toml).
"""

from __future__ import annotations

import ast
import json
import sys
import time
from pathlib import Path


def module_page(source: Path) -> str:
    tree = ast.parse(source.read_text(encoding="utf-8"))
    lines = [f"# `{source}`", "", ast.get_docstring(tree) or "(no module docstring)", ""]
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            kind = "class" if isinstance(node, ast.ClassDef) else "function"
            doc = ast.get_docstring(node) or "(undocumented)"
            lines += [f"## {kind} `{node.name}`", "", doc, ""]
    return "\n".join(lines)


def index_page(folder: Path, out: Path) -> str:
    pages = sorted(p for p in folder.glob("*.md") if p != out)
    lines = ["# shop documentation", ""]
    lines += [f"- [{p.stem}]({p.name})" for p in pages]
    return "\n".join(lines) + "\n"


def main() -> int:
    what, _, target = sys.stdin.read().strip().partition("->")
    what, out = what.strip(), Path(target.strip())
    time.sleep(0.2)  # the model "thinking"
    if what.startswith("index "):
        text = index_page(Path(what.removeprefix("index ").strip()), out)
    else:
        text = module_page(Path(what))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(json.dumps({"wrote": str(out), "bytes": len(text.encode())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
