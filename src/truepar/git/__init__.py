"""git for truepar: one way to run it (C locale, no prompts, no inherited ``GIT_DIR``), the
lock that makes parallel worktree changes safe, lock reasons that name their owner, and the list
of a repository's worktrees. Below the agents and the preflight checks, which both use it."""

from __future__ import annotations

from truepar.git.commands import GitError, Repo, Worktree, git, open_repo
from truepar.git.listing import WorktreeInfo, detached_worktrees, list_worktrees

__all__ = (
    "GitError",
    "Repo",
    "Worktree",
    "WorktreeInfo",
    "detached_worktrees",
    "git",
    "list_worktrees",
    "open_repo",
)
