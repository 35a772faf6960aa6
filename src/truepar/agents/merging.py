"""Bringing an agent's branch back into the checkout it came from — or refusing, cleanly.

A conflict is reported with the files it is in and is never half-applied: git's own
``merge --abort`` / ``rebase --abort`` runs, and then truepar *checks* that the target branch's
HEAD and the checkout's status are exactly what they were before. Should git ever leave
something behind, the checkout is reset to the old HEAD (safe: merging into a checkout with
uncommitted changes to tracked files is refused up front), and if even that fails the error is
truepar's bug, said loudly.

Merges into one checkout are serialized by a lock of their own, so agents finishing at the same
time cannot interleave their merges.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Literal

from truepar.errors import BadInput, InternalError, UsageError
from truepar.git.commands import (
    MERGE_LOCK,
    Worktree,
    admin_lock,
    git,
    last_line,
    open_repo,
    status_paths,
)

__all__ = ("STRATEGIES", "MergeOutcome", "MergeStatus", "Strategy", "merge_back")

Strategy = Literal["merge", "rebase", "none"]
MergeStatus = Literal["merged", "conflict", "nothing", "skipped", "failed"]
STRATEGIES: tuple[Strategy, ...] = ("merge", "rebase", "none")


@dataclasses.dataclass(frozen=True)
class MergeOutcome:
    """What :func:`merge_back` did.

    ``status``: ``merged`` · ``conflict`` (``conflict_files`` says where; nothing changed) ·
    ``nothing`` (the branch has no commit the target lacks) · ``skipped`` (strategy ``none``) ·
    ``failed`` (git refused for another reason, in ``detail``; nothing changed).
    """

    status: MergeStatus
    strategy: Strategy
    agent: str
    branch: str
    target: str
    commits: int
    head_before: str
    head_after: str
    conflict_files: tuple[str, ...] = ()
    detail: str = ""

    def summary(self) -> str:
        """One short phrase, e.g. ``merged (2 commits)`` or ``conflict in a.txt``."""
        plural = "" if self.commits == 1 else "s"
        if self.status == "merged":
            return f"merged ({self.commits} commit{plural}, {self.strategy})"
        if self.status == "conflict":
            return f"conflict in {', '.join(self.conflict_files) or '?'}"
        if self.status == "nothing":
            return "nothing to merge"
        if self.status == "skipped":
            return f"skipped (strategy none, {self.commits} commit{plural} left on {self.branch})"
        return f"failed: {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "conflict_files": list(self.conflict_files)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MergeOutcome:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["conflict_files"] = tuple(values.get("conflict_files", ()))
        return cls(**values)


def merge_back(
    repo: str | os.PathLike[str],
    worktree: Worktree,
    strategy: Strategy | str = "merge",
    *,
    message: str | None = None,
) -> MergeOutcome:
    """Bring ``worktree``'s branch into ``repo``'s current branch.

    ``merge``: ``git merge --no-ff`` (one merge commit per agent). ``rebase``: replay the
    branch onto the target inside the agent's worktree, then fast-forward the target.
    ``none``: leave the branch as it is. Refuses (:class:`BadInput`) a target on a detached
    HEAD or with uncommitted changes to tracked files, and a rebase in a dirty worktree.
    """
    if strategy not in STRATEGIES:
        raise UsageError(f"merge strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    how: Strategy = strategy
    info = open_repo(repo)
    root = info.root
    with admin_lock(info, name=MERGE_LOCK):
        target = git(["rev-parse", "--abbrev-ref", "HEAD"], cwd=root).stdout.strip()
        if target == "HEAD":
            raise BadInput(f"{root} is on a detached HEAD; check out the branch to merge into")
        ref = f"refs/heads/{worktree.branch}"
        if git(["rev-parse", "--verify", "--quiet", ref], cwd=root, check=False).returncode:
            raise BadInput(f"branch {worktree.branch!r} does not exist in {root}")
        head_before = _head(root)
        ahead = int(git(["rev-list", "--count", f"HEAD..{ref}"], cwd=root).stdout.strip())
        outcome = MergeOutcome(
            status="skipped",
            strategy=how,
            agent=worktree.name,
            branch=worktree.branch,
            target=target,
            commits=ahead,
            head_before=head_before,
            head_after=head_before,
        )
        if how == "none":
            return outcome
        if ahead == 0:
            return dataclasses.replace(outcome, status="nothing")
        if status_paths(root, untracked=False):
            raise BadInput(
                f"{root} has uncommitted changes on {target}; commit or stash them before "
                "merging agent branches into it"
            )
        before = status_paths(root)
        if how == "merge":
            message = message or f"truepar: merge agent {worktree.name} ({worktree.branch})"
            return _merge(root, outcome, before, message)
        return _rebase(root, worktree, outcome, before)


def _head(root: Path) -> str:
    return git(["rev-parse", "HEAD"], cwd=root).stdout.strip()


def _unmerged(path: Path) -> tuple[str, ...]:
    out = git(["diff", "--name-only", "--diff-filter=U", "-z"], cwd=path, check=False).stdout
    return tuple(sorted({p for p in out.split("\0") if p}))


def _merge(
    root: Path, outcome: MergeOutcome, before: tuple[str, ...], message: str
) -> MergeOutcome:
    args = ["merge", "--no-ff", "--no-edit", "--quiet", "-m", message, outcome.branch]
    proc = git(args, cwd=root, check=False)
    if proc.returncode == 0:
        return dataclasses.replace(outcome, status="merged", head_after=_head(root))
    conflicts = _unmerged(root)
    if (
        git(["rev-parse", "--verify", "--quiet", "MERGE_HEAD"], cwd=root, check=False).returncode
        == 0
    ):
        git(["merge", "--abort"], cwd=root, check=False)
    _ensure_unchanged(root, outcome.head_before, before)
    if conflicts:
        return dataclasses.replace(outcome, status="conflict", conflict_files=conflicts)
    return dataclasses.replace(outcome, status="failed", detail=last_line(proc.stderr))


def _rebase(
    root: Path, worktree: Worktree, outcome: MergeOutcome, before: tuple[str, ...]
) -> MergeOutcome:
    wt = worktree.path
    if not wt.is_dir():
        raise BadInput(f"rebase needs the agent's worktree {wt}, which is gone; use strategy merge")
    if status_paths(wt, untracked=False):
        raise BadInput(
            f"worktree {wt} has uncommitted changes; commit them or discard them before a rebase"
        )
    ref = f"refs/heads/{worktree.branch}"
    branch_before = git(["rev-parse", ref], cwd=root).stdout.strip()
    proc = git(["rebase", "--quiet", f"refs/heads/{outcome.target}"], cwd=wt, check=False)
    if proc.returncode != 0:
        conflicts = _unmerged(wt)
        git(["rebase", "--abort"], cwd=wt, check=False)
        branch_now = git(["rev-parse", ref], cwd=root).stdout.strip()
        on_branch = git(["symbolic-ref", "--quiet", "HEAD"], cwd=wt, check=False).stdout.strip()
        if branch_now != branch_before or on_branch != ref:
            raise InternalError(
                f"git rebase --abort left {worktree.branch} at {branch_now[:12]} (was "
                f"{branch_before[:12]}) in {wt}"
            )
        _ensure_unchanged(root, outcome.head_before, before)
        if conflicts:
            return dataclasses.replace(outcome, status="conflict", conflict_files=conflicts)
        return dataclasses.replace(outcome, status="failed", detail=last_line(proc.stderr))
    ff = git(["merge", "--ff-only", "--quiet", ref], cwd=root, check=False)
    if ff.returncode != 0:
        _ensure_unchanged(root, outcome.head_before, before)
        return dataclasses.replace(outcome, status="failed", detail=last_line(ff.stderr))
    return dataclasses.replace(outcome, status="merged", head_after=_head(root))


def _state(root: Path) -> tuple[str, tuple[str, ...], bool]:
    merging = git(["rev-parse", "--verify", "--quiet", "MERGE_HEAD"], cwd=root, check=False)
    return _head(root), status_paths(root), merging.returncode == 0


def _ensure_unchanged(root: Path, head_before: str, before: tuple[str, ...]) -> None:
    """The target's HEAD and status must be exactly as before the attempt; make it so, or fail."""
    if _state(root) == (head_before, before, False):
        return
    # Tracked files were clean before we began (checked), so a hard reset loses nothing of the
    # user's; untracked files are left alone by it.
    git(["merge", "--abort"], cwd=root, check=False)
    git(["reset", "--hard", "--quiet", head_before], cwd=root, check=False)
    now = _state(root)
    if now != (head_before, before, False):
        raise InternalError(
            f"could not restore {root} after a failed merge: HEAD {now[0][:12]} (was "
            f"{head_before[:12]}), status {list(now[1])} (was {list(before)})"
        )
