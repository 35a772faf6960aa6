"""What feeds the pipeline ops on an agent's behalf: worktrees, budgets, sessions, swarms, and the
tool-call adapter that runs one LLM message's tool calls in parallel (:mod:`.tool_calls`).

This floor sits above the engine: it builds plans and runs them with :func:`truepar.run`.
"""

from __future__ import annotations

# Worktree isolation and session coordination (issue 5). Aggregation is used as a module:
# ``from truepar.agents import aggregate; aggregate.vote(outputs)``.
from truepar.agents.sessions import (
    SessionLog,
    SessionRecord,
    consolidate,
    load_session,
    record_merge,
    run_agent,
    write_session,
)
from truepar.agents.worktrees import (
    CleanItem,
    CleanReport,
    Commit,
    FileStat,
    GitError,
    MergeOutcome,
    WorkResult,
    Worktree,
    WorktreeInfo,
    clean,
    collect,
    create,
    detached_worktrees,
    list_worktrees,
    lock,
    locked,
    merge_back,
    remove,
    unlock,
    worktrees_dir,
)

__all__ = (
    "CleanItem",
    "CleanReport",
    "Commit",
    "FileStat",
    "GitError",
    "MergeOutcome",
    "SessionLog",
    "SessionRecord",
    "WorkResult",
    "Worktree",
    "WorktreeInfo",
    "clean",
    "collect",
    "consolidate",
    "create",
    "detached_worktrees",
    "list_worktrees",
    "load_session",
    "lock",
    "locked",
    "merge_back",
    "record_merge",
    "remove",
    "run_agent",
    "unlock",
    "worktrees_dir",
    "write_session",
)
