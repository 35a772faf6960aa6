"""Worktree isolation for agents that change a git repository.

Each agent gets its own worktree under ``<repo>-worktrees/<name>`` on its own branch
(``truepar/<name>`` by default), never a detached HEAD, so its commits have a name to merge
and to clean up. Creating is checked, not trusted: afterwards git run inside the new folder
must report that folder as its top level and the new branch as its HEAD, or the worktree is
removed again. While an agent runs, its worktree is locked with a reason naming the agent and
its pid, so ``git worktree prune`` and :func:`clean` leave it alone.

The life of one agent's worktree::

    wt = create(repo, "fix-docs")            # git worktree add -b truepar/fix-docs ...
    with locked(wt, pid=agent.pid): ...      # git worktree lock --reason "truepar: agent ..."
    work = collect(wt)                       # commits, diff stat, uncommitted changes
    merge_back(repo, wt, "merge")            # or "rebase" / "none"; conflicts never half-apply
    remove(wt, delete_branch=True)

Listing, cleaning and merging live in :mod:`truepar.agents.inventory` and
:mod:`truepar.agents.merging` and are re-exported here.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from truepar.agents.inventory import (
    CleanItem,
    CleanReport,
    WorktreeInfo,
    clean,
    detached_worktrees,
    is_build_output,
    list_worktrees,
)
from truepar.agents.merging import STRATEGIES, MergeOutcome, merge_back
from truepar.errors import BadInput
from truepar.git.commands import (
    GitError,
    Repo,
    Worktree,
    admin_lock,
    git,
    is_transient,
    last_line,
    lock_reason,
    open_repo,
    status_paths,
)

__all__ = (
    "STRATEGIES",
    "CleanItem",
    "CleanReport",
    "Commit",
    "FileStat",
    "GitError",
    "MergeOutcome",
    "WorkResult",
    "Worktree",
    "WorktreeInfo",
    "clean",
    "collect",
    "create",
    "detached_worktrees",
    "is_build_output",
    "list_worktrees",
    "lock",
    "locked",
    "merge_back",
    "remove",
    "unlock",
    "worktrees_dir",
)

#: A name is a folder name and a branch-name component: keep it boring.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_ADD_ATTEMPTS = 3


def check_name(name: str, what: str = "agent name") -> str:
    """``name`` if it is safe as a folder and branch component; :class:`BadInput` otherwise."""
    if not _NAME.fullmatch(name) or ".." in name or name.endswith((".lock", ".")):
        raise BadInput(
            f"{what} {name!r} must be letters, digits, '.', '_' or '-' (at most 100, "
            "starting with a letter or digit, no '..', not ending in '.lock')"
        )
    return name


def worktrees_dir(repo: str | os.PathLike[str]) -> Path:
    """``<repo>-worktrees/`` beside the checkout that contains ``repo``: truepar's worktrees
    live there and nowhere else, so :func:`clean` can never touch a worktree of yours."""
    return open_repo(repo).worktrees_dir


# ----------------------------------------------------------------------------- create / remove


def create(
    repo: str | os.PathLike[str],
    name: str,
    base: str = "HEAD",
    branch: str | None = None,
) -> Worktree:
    """Create ``<repo>-worktrees/<name>`` on a new branch (default ``truepar/<name>``) at ``base``.

    Refuses (:class:`BadInput`) a repo that is not a git checkout, a ``base`` that is not a
    commit, a branch that already exists and a folder that is already there. Safe to call from
    many threads or processes at once on one repository.
    """
    info = open_repo(repo)
    check_name(name)
    branch = branch or f"truepar/{name}"
    path = info.worktrees_dir / name
    if path.exists() or path.is_symlink():
        raise BadInput(f"{path} already exists; pick another agent name or remove it first")
    info.worktrees_dir.mkdir(exist_ok=True)
    _add(info, path, branch, base)
    # Checking out the files is the slow part; it only touches the new worktree's own index,
    # so it runs outside the lock and a batch checks out in parallel.
    try:
        # Idempotent (the same commit again), so a race with another git process is retried.
        checkout = git(["reset", "--hard", "--quiet"], cwd=path, check=False, retries=2)
    except BaseException:  # Ctrl-C half-way: leave no half-checked-out worktree behind
        _discard(info, path, branch)
        raise
    if checkout.returncode != 0:
        _discard(info, path, branch)
        raise GitError(f"checking out {branch} in {path} failed: {last_line(checkout.stderr)}")
    return _verified(info, name, path, branch)


def _add(info: Repo, path: Path, branch: str, base: str) -> None:
    args = ["worktree", "add", "--quiet", "--no-checkout", "-b", branch, str(path), base]
    for attempt in range(_ADD_ATTEMPTS):
        with admin_lock(info):
            proc = git(args, cwd=info.root, check=False)
        if proc.returncode == 0:
            return
        reason = last_line(proc.stderr)
        if "already exists" in reason and "branch" in reason:
            raise BadInput(
                f"branch {branch!r} already exists in {info.root}; pick another name, or delete "
                f"it with: git branch -D {branch}"
            )
        if "already exists" in reason:  # the folder: another create() of this name won
            raise BadInput(f"{path} already exists; pick another agent name or remove it first")
        if "not a valid object name" in reason or "invalid reference" in reason:
            raise BadInput(f"base {base!r} does not name a commit in {info.root}")
        if "not a valid branch name" in reason:
            raise BadInput(f"{branch!r} is not a valid git branch name")
        # A git process that is not truepar's raced us (see _git): undo what was made, retry.
        _discard(info, path, branch)
        if not is_transient(proc.stderr) or attempt == _ADD_ATTEMPTS - 1:
            raise GitError(f"git worktree add {path} failed: {reason}")


def _verified(info: Repo, name: str, path: Path, branch: str) -> Worktree:
    """Prove the isolation: git inside ``path`` sees ``path`` as its top and ``branch`` as HEAD."""
    proc = git(
        ["rev-parse", "--show-toplevel", "HEAD", "--symbolic-full-name", "HEAD"],
        cwd=path,
        check=False,
        retries=2,
    )
    lines = proc.stdout.splitlines()
    problem = None
    if proc.returncode != 0 or len(lines) != 3:
        problem = f"git rev-parse failed there: {last_line(proc.stderr)}"
    elif os.path.realpath(lines[0]) != os.path.realpath(path):
        problem = f"git there resolves to {lines[0]}, not to the worktree"
    elif lines[2] != f"refs/heads/{branch}":
        problem = f"its HEAD is {lines[2]!r}, not branch {branch!r}"
    if problem is not None:
        _discard(info, path, branch)
        raise GitError(f"worktree {path} is not isolated ({problem}); it was removed again")
    return Worktree(name=name, path=path, branch=branch, base=lines[1], repo=info.root)


def _discard(info: Repo, path: Path, branch: str) -> None:
    """Undo a half-made worktree: its folder, its admin files and its branch."""
    with admin_lock(info, shared=True):
        git(["worktree", "remove", "--force", "--force", str(path)], cwd=info.root, check=False)
    shutil.rmtree(path, ignore_errors=True)
    with admin_lock(info):
        git(["worktree", "prune"], cwd=info.root, check=False)
    git(["branch", "-D", branch], cwd=info.root, check=False)


def remove(worktree: Worktree, *, force: bool = False, delete_branch: bool = False) -> None:
    """Remove the worktree (and, with ``delete_branch``, its branch).

    Without ``force`` git refuses a worktree with uncommitted or untracked changes, or a locked
    one, and so do we (:class:`BadInput`). A folder already deleted by hand is pruned instead.
    """
    info = open_repo(worktree.repo)
    if not worktree.path.exists():
        with admin_lock(info):
            git(["worktree", "prune"], cwd=info.root)
    else:
        args = [
            "worktree",
            "remove",
            *(["--force", "--force"] if force else []),
            str(worktree.path),
        ]
        with admin_lock(info, shared=True):
            proc = git(args, cwd=info.root, check=False)
        if proc.returncode != 0:
            reason = last_line(proc.stderr)
            if "modified or untracked" in reason:
                raise BadInput(
                    f"worktree {worktree.path} has uncommitted changes; commit or discard them, "
                    "or remove it with force"
                )
            if "locked" in reason:
                raise BadInput(f"worktree {worktree.path} is locked ({reason}); unlock it first")
            raise GitError(f"git worktree remove {worktree.path} failed: {reason}")
    if delete_branch:
        # Alone (git reads every worktree's admin files to see whether the branch is checked
        # out, while a parallel remove deletes some), and retried: a second try of a delete
        # that went through only says "not found".
        with admin_lock(info):
            proc = git(["branch", "-D", worktree.branch], cwd=info.root, check=False, retries=2)
        if proc.returncode != 0 and "not found" not in proc.stderr:
            raise GitError(f"git branch -D {worktree.branch} failed: {last_line(proc.stderr)}")


# ------------------------------------------------------------------------------------ locking


def lock(worktree: Worktree, *, pid: int | None = None) -> None:
    """``git worktree lock`` with a reason naming the agent and ``pid`` (default: this process)."""
    reason = lock_reason(worktree.name, os.getpid() if pid is None else pid)
    with admin_lock(open_repo(worktree.repo), shared=True):
        git(["worktree", "lock", "--reason", reason, str(worktree.path)], cwd=worktree.repo)


def unlock(worktree: Worktree) -> None:
    """``git worktree unlock``; a worktree that is not locked (any more) is fine."""
    with admin_lock(open_repo(worktree.repo), shared=True):
        proc = git(["worktree", "unlock", str(worktree.path)], cwd=worktree.repo, check=False)
    if proc.returncode != 0 and "is not locked" not in proc.stderr:
        raise GitError(f"git worktree unlock {worktree.path} failed: {last_line(proc.stderr)}")


@contextmanager
def locked(worktree: Worktree, *, pid: int | None = None) -> Iterator[Worktree]:
    """Hold the worktree locked for the ``with`` block, and unlock it however the block ends."""
    lock(worktree, pid=pid)
    try:
        yield worktree
    finally:
        unlock(worktree)


# ------------------------------------------------------------------------------------ collect


@dataclasses.dataclass(frozen=True)
class Commit:
    sha: str
    subject: str


@dataclasses.dataclass(frozen=True)
class FileStat:
    """One file of ``git diff --numstat``; a binary file has ``None`` line counts."""

    path: str
    insertions: int | None
    deletions: int | None


@dataclasses.dataclass(frozen=True)
class WorkResult:
    """What an agent left on its branch (``base..branch``) and in its worktree."""

    name: str
    branch: str
    base: str
    head: str
    commits: tuple[Commit, ...]
    files: tuple[FileStat, ...]
    dirty_files: tuple[str, ...]

    @property
    def dirty(self) -> bool:
        """The worktree has changes (or untracked files) that were never committed."""
        return bool(self.dirty_files)

    @property
    def files_changed(self) -> int:
        return len(self.files)

    @property
    def insertions(self) -> int:
        return sum(f.insertions or 0 for f in self.files)

    @property
    def deletions(self) -> int:
        return sum(f.deletions or 0 for f in self.files)

    def diff_stat(self) -> dict[str, Any]:
        return {
            "files_changed": self.files_changed,
            "insertions": self.insertions,
            "deletions": self.deletions,
            "files": [dataclasses.asdict(f) for f in self.files],
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "branch": self.branch,
            "base": self.base,
            "head": self.head,
            "commits": [dataclasses.asdict(c) for c in self.commits],
            "diff_stat": self.diff_stat(),
            "dirty": self.dirty,
            "dirty_files": list(self.dirty_files),
        }


def collect(worktree: Worktree) -> WorkResult:
    """The commits made on the worktree's branch since its base, their diff stat, and any
    uncommitted changes left in the worktree."""
    ref = f"refs/heads/{worktree.branch}"
    head = git(["rev-parse", "--verify", f"{ref}^{{commit}}"], cwd=worktree.repo).stdout.strip()
    span = f"{worktree.base}..{head}"
    log = git(["log", "--reverse", "--format=%H%x1f%s%x1e", span], cwd=worktree.repo).stdout
    commits = tuple(
        Commit(*record.strip("\n").split("\x1f", 1))
        for record in log.split("\x1e")
        if record.strip()
    )
    numstat = git(
        ["diff", "--numstat", "-z", "--no-renames", worktree.base, head], cwd=worktree.repo
    ).stdout
    files = []
    for entry in numstat.split("\0"):
        if entry:
            added, deleted, path = entry.split("\t", 2)
            files.append(
                FileStat(
                    path,
                    None if added == "-" else int(added),
                    None if deleted == "-" else int(deleted),
                )
            )
    dirty: tuple[str, ...] = ()
    if worktree.path.is_dir():
        dirty = status_paths(worktree.path)
    return WorkResult(
        name=worktree.name,
        branch=worktree.branch,
        base=worktree.base,
        head=head,
        commits=commits,
        files=tuple(files),
        dirty_files=dirty,
    )
