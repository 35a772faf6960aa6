"""Worktrees for agents: create and remove, in parallel batches, on a 900-file repository.

``worktrees-create``: 16 worktrees per repetition, in 2 batches of 8 at once, in ms per
worktree (batch wall / 16). truepar's ``create`` runs ``git worktree add --no-checkout`` under
its admin lock, checks the files out outside it, and verifies the worktree's isolation
(``rev-parse --show-toplevel`` + its branch) — 3 git processes more than the peer. The peer is
plain ``git worktree add -b`` with the same batching (it may race: its failures are counted and
retried one at a time so the work is complete), and one at a time.
``worktrees-remove``: the same 16 removed, ``truepar.agents.worktrees.remove`` against plain
``git worktree remove``.

    .venv/bin/python benchmarks/bench_worktrees.py            # both, 5 repetitions
    .venv/bin/python benchmarks/bench_worktrees.py --quick    # 2 repetitions
    .venv/bin/python benchmarks/bench_worktrees.py --dir /dev/shm   # repository on tmpfs

The floor writes the same 900 files (30 folders) into each worktree folder with plain
``os.open``/``write`` and no git at all, batched the same way: what any full checkout costs at
least on this file system. Checking out 900 files is most of the cost, and how fast a file
system creates small files varies by an order of magnitude between folders of one machine, and
from minute to minute on a shared virtual disk: compare rows of one run only.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from common import Benchmark, Column, Goal, Metrics, Variant, check, measure, report
from truepar.agents import worktrees as wt

FILES = 900
COUNT = 16
BATCH = 8
CREATE_GOAL_MS = 70.0
REMOVE_GOAL_MS = 35.0

_repo: Path | None = None
#: Where the temporary repository goes: ``--dir``, else ``$TRUEPAR_BENCH_DIR`` (run.py has no
#: flag for it), else the system's temporary folder.
_parent: str | None = os.environ.get("TRUEPAR_BENCH_DIR") or None


def _git(cwd: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["git", "-C", str(cwd), *args], check=False, capture_output=True, text=True
    )
    if ok:
        check(proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def _text(i: int) -> str:
    return f"# file {i}\n" + "VALUE = 1\n" * 20


def repo() -> Path:
    """A 900-file repository (30 folders × 30 files) in a temporary folder, made once."""
    global _repo
    if _repo is None:
        top = Path(tempfile.mkdtemp(prefix="truepar-bench-wt-", dir=_parent))
        atexit.register(shutil.rmtree, top, True)
        root = top / "repo"
        for i in range(FILES):
            path = root / f"pkg{i // 30:02d}" / f"module{i % 30:02d}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(_text(i))
        _git(root, "init", "-q", "-b", "main")
        _git(root, "add", "-A")
        _git(root, "-c", "user.name=bench", "-c", "user.email=b@b", "commit", "-qm", "init")
        check(int(_git(root, "ls-files", "--", ".").stdout.count("\n")) == FILES, "900 files")
        _repo = root.resolve()
    return _repo


def _names() -> list[str]:
    return [f"w{i:02d}" for i in range(COUNT)]


def _folder() -> Path:
    """``<repo>-worktrees/``, computed here: asking git for it would slow the peers down."""
    root = repo()
    return root.parent / f"{root.name}-worktrees"


def _path(name: str) -> Path:
    return _folder() / name


def reset() -> None:
    """Untimed: no worktrees, no branches but main."""
    root = repo()
    shutil.rmtree(_folder(), ignore_errors=True)
    _git(root, "worktree", "prune")
    branches = _git(root, "for-each-ref", "--format=%(refname:short)", "refs/heads/").stdout
    extra = [b for b in branches.split() if b != "main"]
    if extra:
        _git(root, "branch", "-D", *extra)


def _plain_add(name: str) -> bool:
    path = _path(name)
    path.parent.mkdir(exist_ok=True)
    proc = _git(repo(), "worktree", "add", "-q", "-b", f"plain/{name}", str(path), "HEAD", ok=False)
    return proc.returncode == 0


def _batched(fn: Callable[[str], Any]) -> tuple[float, list[Any]]:
    names = _names()
    results: list[Any] = []
    t0 = time.perf_counter()
    with ThreadPoolExecutor(BATCH) as pool:
        for start in range(0, len(names), BATCH):
            results += list(pool.map(fn, names[start : start + BATCH]))
    return time.perf_counter() - t0, results


def _ms(wall_s: float) -> float:
    return wall_s / COUNT * 1e3


# ------------------------------------------------------------------------------------ create


def _truepar_create() -> Metrics:
    wall, made = _batched(lambda n: wt.create(repo(), n))
    check(all(w.path.is_dir() for w in made), "every worktree exists")
    return {"ms": _ms(wall), "wall_ms": wall * 1e3, "failures": 0}


def _plain_create_parallel() -> Metrics:
    wall, oks = _batched(_plain_add)
    failed = [n for n, ok in zip(_names(), oks, strict=True) if not ok]
    t0 = time.perf_counter()
    for name in failed:  # git raced with itself: clean up and redo, so the job is complete
        shutil.rmtree(_path(name), ignore_errors=True)
        _git(repo(), "worktree", "prune")
        _git(repo(), "branch", "-D", f"plain/{name}", ok=False)
        check(_plain_add(name), f"plain add {name} on retry")
    wall += time.perf_counter() - t0
    return {"ms": _ms(wall), "wall_ms": wall * 1e3, "failures": len(failed)}


def _plain_create_sequential() -> Metrics:
    t0 = time.perf_counter()
    for name in _names():
        check(_plain_add(name), f"plain add {name}")
    wall = time.perf_counter() - t0
    return {"ms": _ms(wall), "wall_ms": wall * 1e3, "failures": 0}


def _write_files(name: str) -> None:
    """The floor: the repository's 900 files written into a new folder, with no git."""
    top = _path(name)
    for i in range(FILES):
        if i % 30 == 0:
            (top / f"pkg{i // 30:02d}").mkdir(parents=True)
        fd = os.open(top / f"pkg{i // 30:02d}" / f"module{i % 30:02d}.py", os.O_CREAT | os.O_WRONLY)
        try:
            os.write(fd, _text(i).encode())
        finally:
            os.close(fd)


def _files_only() -> Metrics:
    wall, _ = _batched(_write_files)
    check(all(len(list(_path(n).rglob("*.py"))) == FILES for n in _names()), "900 files each")
    return {"ms": _ms(wall), "wall_ms": wall * 1e3, "failures": 0}


def benchmark_create() -> Benchmark:
    headline = Variant(f"truepar create ({BATCH} at once)", "truepar", _truepar_create, setup=reset)
    return Benchmark(
        name="worktrees-create",
        title=f"create {COUNT} worktrees of a {FILES}-file repository, batches of {BATCH}",
        metric="ms",
        unit="ms/worktree",
        better="lower",
        goal=Goal(CREATE_GOAL_MS, "<=", (headline.label,)),
        fmt="{:.1f}",
        columns=[Column("wall_ms", "wall ms", "{:.0f}"), Column("failures", "git races", "{:.0f}")],
        variants=[
            headline,
            Variant(
                f"git worktree add ({BATCH} at once)",
                "peer",
                _plain_create_parallel,
                setup=reset,
                note="races are retried one at a time, and counted",
            ),
            Variant(
                "git worktree add (one at a time)", "peer", _plain_create_sequential, setup=reset
            ),
            Variant(
                f"900 files written, no git ({BATCH} at once)", "floor", _files_only, setup=reset
            ),
        ],
        notes=[
            "ms/worktree = wall of all batches / worktrees; every worktree has all 900 files",
            "truepar = add --no-checkout under its lock + checkout outside it + isolation check",
        ],
    )


# ------------------------------------------------------------------------------------ remove


def _populate() -> None:
    """Untimed: a clean slate, then the 16 worktrees to remove."""
    reset()
    for name in _names():
        check(_plain_add(name), f"plain add {name}")


def _truepar_remove() -> Metrics:
    root = repo()

    def one(name: str) -> None:
        tree = wt.Worktree(name=name, path=_path(name), branch=f"plain/{name}", base="", repo=root)
        wt.remove(tree)

    wall, _ = _batched(one)
    check(not any(_path(n).exists() for n in _names()), "every worktree is gone")
    return {"ms": _ms(wall), "wall_ms": wall * 1e3}


def _plain_remove_parallel() -> Metrics:
    wall, oks = _batched(
        lambda n: _git(repo(), "worktree", "remove", str(_path(n)), ok=False).returncode == 0
    )
    check(all(oks), "every plain remove succeeded")
    return {"ms": _ms(wall), "wall_ms": wall * 1e3}


def _plain_remove_sequential() -> Metrics:
    t0 = time.perf_counter()
    for name in _names():
        _git(repo(), "worktree", "remove", str(_path(name)))
    wall = time.perf_counter() - t0
    return {"ms": _ms(wall), "wall_ms": wall * 1e3}


def benchmark_remove() -> Benchmark:
    headline = Variant(
        f"truepar remove ({BATCH} at once)", "truepar", _truepar_remove, setup=_populate
    )
    return Benchmark(
        name="worktrees-remove",
        title=f"remove {COUNT} worktrees of a {FILES}-file repository, batches of {BATCH}",
        metric="ms",
        unit="ms/worktree",
        better="lower",
        goal=Goal(REMOVE_GOAL_MS, "<=", (headline.label,)),
        fmt="{:.1f}",
        columns=[Column("wall_ms", "wall ms", "{:.0f}")],
        variants=[
            headline,
            Variant(
                f"git worktree remove ({BATCH} at once)",
                "peer",
                _plain_remove_parallel,
                setup=_populate,
            ),
            Variant(
                "git worktree remove (one at a time)",
                "peer",
                _plain_remove_sequential,
                setup=_populate,
            ),
        ],
        notes=["truepar = git worktree remove under its shared lock (removes run together)"],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2 repetitions instead of 5")
    parser.add_argument("--repeats", type=int, help="repetitions of each benchmark")
    parser.add_argument("--json", metavar="OUT", type=Path, help="write all numbers as JSON")
    parser.add_argument(
        "--dir", help="folder for the temporary repository (file creation speed differs a lot)"
    )
    args = parser.parse_args(argv)
    global _parent
    _parent = args.dir or _parent
    repeats = args.repeats or (2 if args.quick else 5)
    git_version = _git(Path.cwd(), "--version").stdout.strip()
    print(f"{git_version}; {os.cpu_count()} cores; repository in {repo()}")
    results: dict[str, Any] = {}
    missed = 0
    for make in (benchmark_create, benchmark_remove):
        bench = make()
        data = report(bench, measure(bench, repeats), repeats)
        results[bench.name] = data
        missed += not data["goal"]["headline_met"]
    reset()
    if args.json:
        args.json.write_text(json.dumps({"git": git_version, "benchmarks": results}, indent=2))
        print(f"numbers written to {args.json}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
