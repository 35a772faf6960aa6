"""What worktrees a repository has: ``git worktree list``, with what truepar needs to decide
about each (its lock and whether its owner still runs, uncommitted changes, merged or not).

Read by ``truepar worktrees list`` and ``clean`` (:mod:`truepar.agents.inventory`) and by lint's
TP005 (a worktree on a detached HEAD), which is why it lives below both.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from truepar.git.commands import (
    GitError,
    Repo,
    admin_lock,
    git,
    lock_owner,
    open_repo,
    pid_alive,
    status_paths,
)

__all__ = ("WorktreeInfo", "detached_worktrees", "list_worktrees")


@dataclasses.dataclass(frozen=True)
class WorktreeInfo:
    """One entry of ``git worktree list``, with what truepar needs to decide about it.

    ``dirty`` and ``merged`` are ``None`` where they could not be (or were not) checked: a
    missing folder, a bare repository, or ``list_worktrees(..., status=False)``.
    """

    path: Path
    head: str | None
    branch: str | None
    main: bool
    bare: bool
    detached: bool
    locked: bool
    lock_reason: str | None
    lock_pid: int | None
    lock_alive: bool | None
    prunable: bool
    prunable_reason: str | None
    managed: bool
    dirty: bool | None = None
    dirty_files: tuple[str, ...] = ()
    merged: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["path"] = str(self.path)
        data["dirty_files"] = list(self.dirty_files)
        return data


def _parse_porcelain(text: str, repo: Repo) -> list[WorktreeInfo]:
    records: list[dict[str, str | None]] = []
    current: dict[str, str | None] = {}
    for field in text.split("\0"):
        if not field:
            if current:
                records.append(current)
            current = {}
            continue
        key, _, value = field.partition(" ")
        current[key] = value if _ else None
    if current:
        records.append(current)
    managed_root = repo.worktrees_dir
    infos = []
    for index, rec in enumerate(records):
        path = Path(rec.get("worktree") or "")
        branch_ref = rec.get("branch")
        reason = rec.get("locked") if "locked" in rec else None
        owner = lock_owner(reason)
        pid = owner[0] if owner is not None else None
        infos.append(
            WorktreeInfo(
                path=path,
                head=rec.get("HEAD"),
                branch=branch_ref.removeprefix("refs/heads/") if branch_ref else None,
                main=index == 0,
                bare="bare" in rec,
                detached="detached" in rec,
                locked="locked" in rec,
                lock_reason=reason,
                lock_pid=pid,
                lock_alive=None if owner is None else pid_alive(*owner),
                prunable="prunable" in rec,
                prunable_reason=rec.get("prunable"),
                managed=index > 0 and Path(os.path.realpath(path.parent)) == managed_root,
            )
        )
    return infos


def _merged_branches(root: Path) -> set[str]:
    out = git(
        ["for-each-ref", "--merged", "HEAD", "--format=%(refname)", "refs/heads/"], cwd=root
    ).stdout
    return {line.removeprefix("refs/heads/") for line in out.splitlines()}


def _with_status(info: WorktreeInfo, root: Path, merged: set[str]) -> WorktreeInfo:
    changes: dict[str, Any] = {}
    if not info.bare and not info.path.is_dir():
        changes.update(dirty=False)  # the folder is gone, and whatever it held with it
    elif not info.bare:
        try:
            files = status_paths(info.path)
        except GitError:
            pass  # a broken worktree: dirty stays None ("unknown"), and clean keeps it
        else:
            changes.update(dirty=bool(files), dirty_files=files)
    if info.branch is not None:
        changes["merged"] = info.branch in merged
    elif info.head:
        proc = git(["merge-base", "--is-ancestor", info.head, "HEAD"], cwd=root, check=False)
        changes["merged"] = proc.returncode == 0
    return dataclasses.replace(info, **changes)


def list_worktrees(repo: str | os.PathLike[str], *, status: bool = True) -> list[WorktreeInfo]:
    """Every worktree of ``repo``, the main checkout first.

    With ``status`` (the default) each is checked for uncommitted changes and for whether its
    branch (or detached HEAD) is merged into ``repo``'s current HEAD; that costs one
    ``git status`` per worktree, run a few at a time.
    """
    info = open_repo(repo)
    with admin_lock(info, shared=True):
        out = git(["worktree", "list", "--porcelain", "-z"], cwd=info.root, retries=2).stdout
    entries = _parse_porcelain(out, info)
    if not status:
        return entries
    merged = _merged_branches(info.root)
    with ThreadPoolExecutor(max_workers=min(8, len(entries))) as pool:
        return list(pool.map(lambda e: _with_status(e, info.root, merged), entries))


def detached_worktrees(repo: str | os.PathLike[str]) -> list[WorktreeInfo]:
    """The worktrees (the main checkout included) whose HEAD is detached, not on a branch.

    Commits made there belong to no branch and are lost to ``gc`` once the worktree goes.
    """
    return [w for w in list_worktrees(repo, status=False) if w.detached]


# -------------------------------------------------------------------------------------- clean
