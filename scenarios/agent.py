"""A small command-line "sub-agent" for the agent-deployment scenario: real work, own folder.

    python3 scenarios/agent.py TASK WORKDIR

Each task does real CPU and file work over the Python standard library found on this machine and
writes its report to WORKDIR/report.json; nothing is simulated with sleeps.
"""

from __future__ import annotations

import collections
import json
import re
import sys
import sysconfig
import time
from pathlib import Path

STDLIB = Path(sysconfig.get_paths()["stdlib"])
WORD = re.compile(rb"[A-Za-z_][A-Za-z0-9_]{2,}")


def sources(limit: int) -> list[Path]:
    files = sorted(p for p in STDLIB.rglob("*.py") if "site-packages" not in p.parts)
    return files[:limit]


def index_identifiers(workdir: Path) -> dict[str, object]:
    """Count identifiers across the stdlib and keep the 50 most common."""
    counts: collections.Counter[bytes] = collections.Counter()
    files = sources(1200)
    for path in files:
        counts.update(WORD.findall(path.read_bytes()))
    top = [(w.decode(), n) for w, n in counts.most_common(50)]
    (workdir / "identifiers.txt").write_text("\n".join(f"{w}\t{n}" for w, n in top) + "\n")
    return {"files": len(files), "distinct": len(counts), "top": top[:5]}


def compile_modules(workdir: Path) -> dict[str, object]:
    """Compile stdlib modules to bytecode in memory and report the biggest code objects."""
    sizes = []
    files = sources(700)
    for path in files:
        try:
            code = compile(path.read_bytes(), str(path), "exec")
        except (SyntaxError, ValueError):
            continue
        sizes.append((len(code.co_code), path.name))
    sizes.sort(reverse=True)
    (workdir / "largest.txt").write_text("\n".join(f"{n}\t{s}" for s, n in sizes[:50]) + "\n")
    return {"files": len(files), "compiled": len(sizes), "largest": sizes[:3]}


def line_statistics(workdir: Path) -> dict[str, object]:
    """Lines, blank lines and comment lines per top-level stdlib package."""
    per: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0])
    files = sources(1500)
    for path in files:
        key = path.relative_to(STDLIB).parts[0]
        for line in path.read_bytes().splitlines():
            stripped = line.strip()
            row = per[key]
            row[0] += 1
            row[1] += not stripped
            row[2] += stripped.startswith(b"#")
    (workdir / "lines.json").write_text(json.dumps(per, indent=1, sort_keys=True))
    total = [sum(r[i] for r in per.values()) for i in range(3)]
    return {"files": len(files), "lines": total[0], "blank": total[1], "comments": total[2]}


TASKS = {"index": index_identifiers, "compile": compile_modules, "lines": line_statistics}


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] not in TASKS:
        print(f"usage: agent.py {{{','.join(TASKS)}}} WORKDIR", file=sys.stderr)
        return 2
    task, workdir = sys.argv[1], Path(sys.argv[2])
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    result = TASKS[task](workdir)
    report = {"task": task, "result": result}
    # The timing goes to the file only: what the agent prints is its answer, the same every run.
    timed = {**report, "seconds": round(time.time() - started, 3)}
    (workdir / "report.json").write_text(json.dumps(timed, indent=1, default=str))
    print(json.dumps(report, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
