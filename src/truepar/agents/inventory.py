"""Cleaning up the worktrees truepar made (what a repository has: :mod:`truepar.git.listing`).

:func:`clean` removes only what is safe to lose: a worktree of truepar's (a folder under
``<repo>-worktrees/``) that has no uncommitted changes, whose branch is merged into the current
branch, and that no running agent holds locked. Everything else is kept, with the reason in
words, unless ``force``. Orphans, whose folder was deleted by hand, are pruned from git's admin
files; their branch goes too when it is merged.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from truepar.git.commands import GitError, Repo, admin_lock, git, last_line, open_repo
from truepar.git.listing import WorktreeInfo, detached_worktrees, list_worktrees

__all__ = (
    "CleanItem",
    "CleanReport",
    "WorktreeInfo",
    "clean",
    "detached_worktrees",
    "is_build_output",
    "list_worktrees",
)


Action = Literal["removed", "kept", "pruned", "would remove", "would prune"]


@dataclasses.dataclass(frozen=True)
class CleanItem:
    path: str
    branch: str | None
    action: Action
    reasons: tuple[str, ...]
    branch_deleted: bool = False
    #: Git-ignored files and folders in it, which removing it deletes (git does not ask).
    ignored: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "reasons": list(self.reasons),
            "ignored": list(self.ignored),
        }


@dataclasses.dataclass(frozen=True)
class CleanReport:
    repo: str
    dry_run: bool
    removed: tuple[CleanItem, ...]
    kept: tuple[CleanItem, ...]
    pruned: tuple[CleanItem, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo": self.repo,
            "dry_run": self.dry_run,
            "removed": [i.to_dict() for i in self.removed],
            "kept": [i.to_dict() for i in self.kept],
            "pruned": [i.to_dict() for i in self.pruned],
        }


def _current(root: Path) -> str:
    name = git(["rev-parse", "--abbrev-ref", "HEAD"], cwd=root).stdout.strip()
    return "the detached HEAD" if name == "HEAD" else name


#: Ignored paths that are build output or caches — made again by a build, safe to delete: any
#: path with a folder of these names, or a file with one of these suffixes. Any other ignored
#: file (``.env``, notes, data) keeps its worktree unless ``force``.
BUILD_OUTPUT_DIRS = frozenset(
    {
        "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", ".tox",
        ".nox", ".venv", "venv", "node_modules", "build", "dist", "target", "out", ".cache",
        ".gradle", ".next", "coverage", "htmlcov",
    }
)  # fmt: skip
BUILD_OUTPUT_SUFFIXES = (".pyc", ".pyo", ".o", ".obj", ".so", ".a", ".class", ".log", ".tmp")


def is_build_output(path: str) -> bool:
    """Whether an ignored path is build output or a cache, by :data:`BUILD_OUTPUT_DIRS` and
    :data:`BUILD_OUTPUT_SUFFIXES`."""
    parts = [p for p in path.rstrip("/").split("/") if p]
    if any(p in BUILD_OUTPUT_DIRS or p.endswith(".egg-info") for p in parts):
        return True
    return path.endswith(BUILD_OUTPUT_SUFFIXES)


def ignored_files(path: Path) -> tuple[str, ...]:
    """The git-ignored files in worktree ``path`` (a wholly ignored folder as ``name/``)."""
    proc = git(
        ["ls-files", "--others", "--ignored", "--exclude-standard", "--directory", "-z"],
        cwd=path,
        check=False,
    )
    if proc.returncode != 0:
        return ()
    return tuple(sorted(p for p in proc.stdout.split("\0") if p))


def _blockers(w: WorktreeInfo, target: str, ignored: tuple[str, ...] = ()) -> list[str]:
    """Why ``w`` must stay; empty when it is safe to remove."""
    reasons = []
    precious = [p for p in ignored if not is_build_output(p)]
    if precious:
        shown = ", ".join(precious[:3]) + (
            f" and {len(precious) - 3} more" if len(precious) > 3 else ""
        )
        reasons.append(
            f"has ignored files that are not build output ({shown}): removing it deletes them"
        )
    if w.locked:
        if w.lock_pid is None:
            reasons.append(f"locked: {w.lock_reason or 'no reason given'}")
        elif w.lock_alive:
            reasons.append(f"locked by a running agent (pid {w.lock_pid})")
    if w.dirty:
        reasons.append(f"has uncommitted changes ({len(w.dirty_files)} file(s))")
    elif w.dirty is None:
        reasons.append("git status failed there, so it may hold uncommitted changes")
    what = f"branch {w.branch}" if w.branch else "its detached HEAD"
    if w.merged is False:
        reasons.append(f"{what} has commits not merged into {target}")
    elif w.merged is None:
        reasons.append(f"cannot tell whether {what} is merged into {target}")
    return reasons


def clean(
    repo: str | os.PathLike[str], *, dry_run: bool = False, force: bool = False
) -> CleanReport:
    """Remove truepar's finished worktrees (and their branches); prune orphans.

    Kept unless ``force``: a worktree with uncommitted changes, one whose branch has commits not
    merged into the current branch, one locked by an agent whose pid still runs, one locked
    by someone else, and one holding git-ignored files that are not build output
    (:func:`is_build_output`) — removing a worktree deletes its ignored files. Every item lists
    the ignored files its removal deletes. A truepar lock whose process is gone is stale and
    does not keep anything.
    Worktrees outside ``<repo>-worktrees/`` are never touched. ``dry_run`` decides the same
    way and changes nothing.
    """
    info = open_repo(repo)
    target = _current(info.root)
    entries = [w for w in list_worktrees(info.root) if not w.main]
    removed: list[CleanItem] = []
    kept: list[CleanItem] = []
    pruned: list[CleanItem] = []
    doomed_branches: list[str] = []

    orphans = [w for w in entries if w.prunable]
    if orphans and not dry_run:
        with admin_lock(info):
            git(["worktree", "prune"], cwd=info.root)
    for w in orphans:
        reasons = [w.prunable_reason or "its folder is gone"]
        delete = w.managed and w.branch is not None and (force or w.merged is True)
        if w.managed and w.branch is not None and not delete:
            reasons.append(f"branch {w.branch} kept: it may have commits not merged into {target}")
        if delete and w.branch is not None:
            doomed_branches.append(w.branch)
        action: Action = "would prune" if dry_run else "pruned"
        pruned.append(CleanItem(str(w.path), w.branch, action, tuple(reasons), delete))

    for w in entries:
        if w.prunable or not w.managed:
            continue
        ignored = ignored_files(w.path)
        blockers = _blockers(w, target, ignored)
        if blockers and not force:
            kept.append(CleanItem(str(w.path), w.branch, "kept", tuple(blockers), ignored=ignored))
            continue
        reasons = [f"forced: {b}" for b in blockers] or ["clean and merged"]
        if w.locked and w.lock_pid is not None and not w.lock_alive:
            reasons.append(f"stale lock (pid {w.lock_pid} no longer runs)")
        if not dry_run:
            failure = _remove_path(info, w.path, force=force or w.locked)
            if failure is not None:  # it changed since we looked (an agent wrote to it)
                kept.append(CleanItem(str(w.path), w.branch, "kept", (failure,), ignored=ignored))
                continue
        if w.branch is not None:
            doomed_branches.append(w.branch)
        action = "would remove" if dry_run else "removed"
        removed.append(
            CleanItem(str(w.path), w.branch, action, tuple(reasons), w.branch is not None, ignored)
        )

    if not dry_run:
        _delete_branches(info, doomed_branches)
        try:
            info.worktrees_dir.rmdir()  # only when nothing is left in it
        except OSError:
            pass
    return CleanReport(str(info.root), dry_run, tuple(removed), tuple(kept), tuple(pruned))


def _remove_path(info: Repo, path: Path, *, force: bool) -> str | None:
    """Remove one worktree; git's reason if it refused (then nothing was removed)."""
    if not path.exists():  # a locked orphan: git prune skips locked ones, so unlock it first
        with admin_lock(info, shared=True):
            git(["worktree", "unlock", str(path)], cwd=info.root, check=False)
        with admin_lock(info):
            git(["worktree", "prune"], cwd=info.root, check=False)
        return None
    args = ["worktree", "remove", *(["--force", "--force"] if force else []), str(path)]
    with admin_lock(info, shared=True):
        proc = git(args, cwd=info.root, check=False)
    return None if proc.returncode == 0 else f"git refused to remove it: {last_line(proc.stderr)}"


def _delete_branches(info: Repo, branches: Iterable[str]) -> None:
    names = sorted(set(branches))
    if not names:
        return
    with admin_lock(info, shared=True):
        proc = git(["branch", "-D", *names], cwd=info.root, check=False)
    if proc.returncode != 0 and "not found" not in proc.stderr:
        raise GitError(f"git branch -D {' '.join(names)} failed: {last_line(proc.stderr)}")
