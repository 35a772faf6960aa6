"""Running git for the agent layer, and the lock that makes parallel worktree changes safe.

Why a lock of our own: ``git worktree add`` writes the new worktree's admin folder
(``.git/worktrees/<id>/``) in several steps, while every other ``git worktree`` command (and
``git branch``) reads *all* admin folders. Eight ``add`` at once on one repository fail about
half the time with ``fatal: failed to read .git/worktrees/<id>/commondir: Success`` (measured
with git 2.39). So truepar takes an ``flock`` on ``<git-common-dir>/truepar-worktrees.lock``:
exclusive for the short step that writes admin files (``add --no-checkout``, ``prune``), shared
for commands that only read them. The slow part of creating a worktree, checking out its files,
runs outside the lock, so batches still check out in parallel.

Every git command runs with a C locale (its messages are parsed), no prompts, and without the
``GIT_DIR``-style variables a caller (or a git hook) may have exported: with ``GIT_DIR`` set,
``git -C <worktree>`` would silently act on another repository and break the isolation.
"""

from __future__ import annotations

import dataclasses
import fcntl
import functools
import os
import re
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import psutil

from truepar.errors import BadInput, OpError

__all__ = (
    "MERGE_LOCK",
    "GitError",
    "Repo",
    "Worktree",
    "admin_lock",
    "clean_env",
    "git",
    "git_env",
    "lock_owner",
    "lock_pid",
    "lock_reason",
    "open_repo",
    "pid_alive",
    "status_paths",
    "worktrees_dir",
)

#: Variables that point git at a repository other than the one ``-C`` names.
_LOCATION_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_CEILING_DIRECTORIES",
)
#: Messages of a race with another git process; the command is worth one more try.
TRANSIENT = ("failed to read", "could not lock", "unable to create", "cannot lock ref")
_LOCK_NAME = "truepar-worktrees.lock"
#: The lock that serializes merges and session commits into one checkout.
MERGE_LOCK = "truepar-merge.lock"


class GitError(OpError):
    """A git command failed in a way the caller cannot fix by changing its input.

    The message names the command and carries git's own last line.
    """


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """``os.environ`` without the variables that would point git elsewhere: what an agent in a
    worktree runs with, so its own git commands land in its worktree."""
    env = {k: v for k, v in os.environ.items() if k not in _LOCATION_VARS}
    if extra:
        env.update(extra)
    return env


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """:func:`clean_env` with a C locale (truepar parses git's messages) and no prompts."""
    env = clean_env()
    env.update(
        LC_ALL="C",
        LANGUAGE="C",
        GIT_TERMINAL_PROMPT="0",
        GIT_EDITOR="true",
        GIT_MERGE_AUTOEDIT="no",
        # `git status` may otherwise take index.lock to refresh stat data, racing with agents.
        GIT_OPTIONAL_LOCKS="0",
    )
    if not _has_identity():
        env.update(_FALLBACK_IDENTITY)
    if extra:
        env.update(extra)
    return env


#: Who truepar's own commits (merges, the session record) are by when git knows no one: a fresh
#: CI machine has no user.name/user.email, and git would refuse to commit at all.
_FALLBACK_IDENTITY = {
    "GIT_AUTHOR_NAME": "truepar",
    "GIT_AUTHOR_EMAIL": "truepar@localhost",
    "GIT_COMMITTER_NAME": "truepar",
    "GIT_COMMITTER_EMAIL": "truepar@localhost",
}


@functools.lru_cache(maxsize=1)
def _has_identity() -> bool:
    if os.environ.get("GIT_COMMITTER_EMAIL") or os.environ.get("EMAIL"):
        return True
    proc = subprocess.run(
        ["git", "config", "user.email"], capture_output=True, text=True, check=False
    )
    return proc.returncode == 0 and bool(proc.stdout.strip())


def git(
    args: Sequence[str],
    *,
    cwd: Path,
    check: bool = True,
    retries: int = 0,
) -> subprocess.CompletedProcess[str]:
    """Run ``git -C cwd args``; raise :class:`GitError` on failure when ``check``.

    ``retries`` re-runs a command that failed with a known race message (read-only commands
    only: a retried write could apply twice).
    """
    argv = ["git", "-C", str(cwd), *args]
    for attempt in range(retries + 1):
        try:
            proc = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="surrogateescape",
                env=git_env(),
                check=False,
            )
        except FileNotFoundError as exc:
            raise BadInput("git is not installed (no 'git' on PATH)") from exc
        if proc.returncode == 0 or attempt == retries or not is_transient(proc.stderr):
            break
        time.sleep(0.02 * (attempt + 1))
    if check and proc.returncode != 0:
        raise GitError(f"git {' '.join(args)} failed in {cwd}: {last_line(proc.stderr)}")
    return proc


def is_transient(stderr: str) -> bool:
    low = stderr.lower()
    return any(marker in low for marker in TRANSIENT)


def last_line(text: str) -> str:
    """The last non-empty line of git's output: its ``fatal:`` line, without hints after it."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    fatal = [ln for ln in lines if ln.startswith(("fatal:", "error:"))]
    return (fatal[0] if fatal else lines[-1] if lines else "(no message)").strip()


def status_paths(path: Path, *, untracked: bool = True) -> tuple[str, ...]:
    """Paths ``git status`` reports in the checkout at ``path`` (untracked ones too by default)."""
    args = ["status", "--porcelain", "-z", "--no-renames"]
    if not untracked:
        args.append("--untracked-files=no")
    out = git(args, cwd=path, retries=2).stdout
    return tuple(entry[3:] for entry in out.split("\0") if len(entry) > 3)


def _started(pid: int) -> int | None:
    """When process ``pid`` started (whole seconds since the epoch), if it exists."""
    try:
        return int(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def lock_reason(name: str, pid: int) -> str:
    """The reason truepar locks an agent's worktree with; :func:`lock_owner` reads it back.

    It names the process and when it started, so that a lock whose process died — killed with
    SIGKILL, say, so it never unlocked — is known stale even after its pid is used again.
    """
    started = _started(pid)
    when = f", started {started}" if started is not None else ""
    return f"truepar: agent {name} running (pid {pid}{when})"


_OWNER = re.compile(r"^truepar: agent \S+ running \(pid (\d+)(?:, started (\d+))?\)$")


def lock_owner(reason: str | None) -> tuple[int, int | None] | None:
    """The pid (and start time, when recorded) in a lock reason truepar wrote; ``None`` for
    anyone else's lock."""
    match = _OWNER.match(reason or "")
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)) if match.group(2) else None


def lock_pid(reason: str | None) -> int | None:
    """The pid in a lock reason truepar wrote, or ``None`` for anyone else's lock."""
    owner = lock_owner(reason)
    return owner[0] if owner is not None else None


def pid_alive(pid: int, started: int | None = None) -> bool:
    """Whether process ``pid`` still runs on this machine — the same process, when its start
    time is known (a pid can be reused), and not a zombie (dead, only not yet reaped)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        # Start times are whole seconds in the reason; allow for the rounding.
        return started is None or abs(proc.create_time() - started) < 2
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True  # it exists, it is just not ours to look at


@dataclasses.dataclass(frozen=True)
class Repo:
    """A checkout: its top folder and the ``.git`` folder that all its worktrees share."""

    root: Path
    common_dir: Path

    @property
    def worktrees_dir(self) -> Path:
        """``<repo>-worktrees/`` beside the checkout: truepar's worktrees live there, only."""
        return worktrees_dir(self.root)


def worktrees_dir(root: Path) -> Path:
    return root.parent / f"{root.name}-worktrees"


def open_repo(path: str | os.PathLike[str]) -> Repo:
    """The checkout that contains ``path``; :class:`BadInput` with one line if there is none."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise BadInput(f"{str(folder)!r} is not a folder; give the path of a git repository")
    proc = git(
        ["rev-parse", "--path-format=absolute", "--show-toplevel", "--git-common-dir"],
        cwd=folder,
        check=False,
    )
    if proc.returncode != 0:
        reason = last_line(proc.stderr)
        if "not a git repository" in reason:
            raise BadInput(f"{str(folder)!r} is not a git repository")
        raise BadInput(f"{str(folder)!r} is not a usable git checkout: {reason}")
    lines = proc.stdout.splitlines()
    return Repo(root=Path(os.path.realpath(lines[0])), common_dir=Path(lines[1]))


@contextmanager
def admin_lock(repo: Repo, *, shared: bool = False, name: str = _LOCK_NAME) -> Iterator[None]:
    """Hold truepar's lock on ``repo``'s worktree admin files (see the module docstring).

    ``flock`` locks belong to an open file, so threads of one process exclude each other too,
    and the kernel drops the lock if the process dies: no stale lock file to clean up. ``name``
    picks another lock in the same folder (merges into the checkout take their own).
    """
    fd = os.open(repo.common_dir / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock


@dataclasses.dataclass(frozen=True)
class Worktree:
    """A worktree truepar created for one agent, on its own branch.

    ``base`` is the commit (full sha) the branch started from: the agent's work is
    ``base..branch``.
    """

    name: str
    path: Path
    branch: str
    base: str
    repo: Path

    def to_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "path": str(self.path),
            "branch": self.branch,
            "base": self.base,
            "repo": str(self.repo),
        }
