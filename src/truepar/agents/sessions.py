"""Session coordination: every agent writes its own log; the orchestrator merges them once.

Agents running at the same time never share a file: each one's log is its own pair in the
sessions folder (:mod:`truepar.agents.session_log`). Only when they are all done does
:func:`consolidate` read every log and write one record (``record-<run-id>.json``); in git mode
it also commits that record as ``.truepar/sessions/<run-id>.json`` in ONE commit whose message
lists every session and its outcome, so the repository's history says what the swarm did.

The record is plain data; recording it in the evidence ledger belongs to a higher floor, which
passes ``on_record`` (the agent floor never imports the evidence floor).

An agent started by :func:`run_agent` gets ``TRUEPAR_AGENT`` (its name) and
``TRUEPAR_SESSION_META`` (a file path) in its environment; if it writes ``{"tokens": N}`` as
JSON there, its log carries the tokens it spent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from truepar.agents.session_log import (
    SessionLog,
    SessionStatus,
    load_session,
    record_merge,
    session_paths,
    utc_now,
    write_session,
)
from truepar.agents.worktrees import check_name, collect, locked
from truepar.errors import BadInput
from truepar.fileio import atomic_write_json
from truepar.git.commands import (
    MERGE_LOCK,
    GitError,
    Worktree,
    admin_lock,
    clean_env,
    git,
    last_line,
    open_repo,
)

__all__ = (
    "SessionLog",
    "SessionRecord",
    "consolidate",
    "load_session",
    "new_run_id",
    "record_merge",
    "reported_tokens",
    "run_agent",
    "session_paths",
    "write_session",
)

_TAIL_BYTES = 64 * 1024
_GATE = ("/bin/sh", "-c", 'read -r _ && exec "$@"', "truepar-agent")


# ---------------------------------------------------------------------------------- run_agent


def run_agent(
    name: str,
    command: Sequence[str],
    *,
    session_dir: str | os.PathLike[str],
    worktree: Worktree | None = None,
    cwd: str | os.PathLike[str] | None = None,
    task: str = "",
    timeout_s: float | None = None,
    env: Mapping[str, str] | None = None,
    tail_lines: int = 20,
) -> SessionLog:
    """Run one agent's command to the end and write its session log.

    It runs in ``worktree`` (locked with the agent's pid while it runs) or in ``cwd``; the
    log records its commits and diff stat there. A command that cannot start is a session
    with status ``error``, not an exception: the other agents' sessions go on.
    """
    check_name(name)
    if not command:
        raise BadInput(f"agent {name!r} has an empty command")
    folder = Path(session_dir)
    folder.mkdir(parents=True, exist_ok=True)
    workdir = Path(cwd) if cwd is not None else worktree.path if worktree else Path.cwd()
    meta = folder / f".session-{name}.meta.json"
    meta.unlink(missing_ok=True)
    child_env = clean_env({**(env or {}), "TRUEPAR_AGENT": name, "TRUEPAR_SESSION_META": str(meta)})
    start_utc, t0 = utc_now(), time.monotonic()
    status: SessionStatus = "error"
    code: int | None = None
    detail = ""
    # In a worktree the agent starts behind a gate: a shell that waits for one line on stdin,
    # then execs the command under the same pid. So the worktree is locked with the agent's
    # own pid *before* the agent does anything.
    argv = [*_GATE, *command] if worktree is not None else list(command)
    with tempfile.TemporaryFile() as out:
        try:
            if not _findable(command[0], workdir, child_env):
                raise FileNotFoundError(2, "no such command")
            proc = subprocess.Popen(
                argv,
                cwd=workdir,
                env=child_env,
                stdin=subprocess.PIPE if worktree is not None else subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # so a timeout can stop the agent and its children
            )
        except OSError as exc:
            detail = f"cannot start {command[0]!r}: {exc.strerror or exc}"
        else:
            status, code, detail = _wait(proc, worktree, timeout_s)
        tail = _tail(out, tail_lines)
    duration_s = time.monotonic() - t0
    log = SessionLog(
        agent=name,
        task=task,
        command=tuple(command),
        cwd=str(workdir),
        start_utc=start_utc,
        end_utc=utc_now(),
        duration_s=round(duration_s, 6),
        status=status,
        exit_code=code,
        output_tail=tail,
        tokens=reported_tokens(meta),
        detail=detail,
    )
    meta.unlink(missing_ok=True)
    if worktree is not None:
        log = dataclasses.replace(
            log, worktree=str(worktree.path), branch=worktree.branch, base=worktree.base
        )
        try:
            work = collect(worktree)
        except GitError as exc:
            log = dataclasses.replace(log, detail=f"{log.detail} {exc}".strip())
        else:
            log = dataclasses.replace(
                log,
                commits=work.commits,
                diff_stat=work.diff_stat(),
                dirty_files=work.dirty_files,
            )
    write_session(folder, log)
    return log


def _wait(
    proc: subprocess.Popen[bytes], worktree: Worktree | None, timeout_s: float | None
) -> tuple[SessionStatus, int | None, str]:
    try:
        with locked(worktree, pid=proc.pid) if worktree else contextlib.nullcontext():
            if proc.stdin is not None:  # open the gate; the agent then reads end-of-file
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.write(b"go\n")
                    proc.stdin.close()
            try:
                code = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill(proc)
                return "timeout", proc.returncode, f"stopped after {timeout_s} s"
    except BaseException:
        _kill(proc)  # Ctrl-C, or the lock failed: never leave an agent running unattended
        raise
    if code < 0:
        return "failed", code, f"killed by signal {-code}"
    return ("ok" if code == 0 else "failed"), code, ""


def _findable(program: str, workdir: Path, env: Mapping[str, str]) -> bool:
    if os.sep in program:
        return os.access(workdir / program, os.X_OK)
    return shutil.which(program, path=env.get("PATH", os.defpath)) is not None


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _tail(out: Any, lines: int) -> tuple[str, ...]:
    size = out.seek(0, os.SEEK_END)
    out.seek(max(0, size - _TAIL_BYTES))
    text = out.read().decode("utf-8", errors="replace")
    return tuple(text.splitlines()[-lines:]) if lines > 0 else ()


def reported_tokens(meta: Path) -> int | None:
    try:
        value = json.loads(meta.read_text(encoding="utf-8")).get("tokens")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# -------------------------------------------------------------------------------- consolidate


@dataclasses.dataclass(frozen=True)
class SessionRecord:
    """Every session of one run, merged: written once, by the orchestrator."""

    run_id: str
    created_utc: str
    sessions: tuple[SessionLog, ...]
    missing: tuple[str, ...] = ()
    commit: str | None = None
    committed_path: str | None = None

    def summary(self) -> dict[str, Any]:
        """Counts and totals, e.g. for an evidence ledger record's ``summary``."""
        s = self.sessions
        starts = [x.start_utc for x in s]
        ends = [x.end_utc for x in s]
        wall_s = (
            (
                datetime.fromisoformat(max(ends)) - datetime.fromisoformat(min(starts))
            ).total_seconds()
            if s
            else 0.0
        )
        tokens = [x.tokens for x in s if x.tokens is not None]
        return {
            "run_id": self.run_id,
            "agents": len(s),
            "missing": len(self.missing),
            "ok": sum(x.status == "ok" for x in s),
            "failed": sum(x.status != "ok" for x in s),
            "merged": sum(x.merge is not None and x.merge.status == "merged" for x in s),
            "conflicts": sum(x.merge is not None and x.merge.status == "conflict" for x in s),
            "commits": sum(len(x.commits) for x in s),
            "tokens": sum(tokens) if tokens else None,
            "wall_s": round(wall_s, 3),
            "agent_s": round(sum(x.duration_s for x in s), 3),
        }

    def message(self) -> str:
        """The git commit message: a subject line, then one line per session."""
        n = len(self.sessions) + len(self.missing)
        lines = [f"truepar swarm {self.run_id}: {n} agent{'' if n == 1 else 's'}", ""]
        entries = [(x.agent, x.outcome()) for x in self.sessions]
        entries += [(name, "missing (it wrote no session log)") for name in self.missing]
        lines += [f"- {agent}: {outcome}" for agent, outcome in sorted(entries)]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "truepar-sessions",
            "version": 1,
            "run_id": self.run_id,
            "created_utc": self.created_utc,
            "summary": self.summary(),
            "sessions": [x.to_dict() for x in self.sessions],
            "missing": list(self.missing),
            "commit": self.commit,
            "committed_path": self.committed_path,
        }


def new_run_id() -> str:
    """A sortable, unique run id: ``20250101T120000Z-1a2b3c``."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def consolidate(
    session_dir: str | os.PathLike[str],
    *,
    run_id: str | None = None,
    repo: str | os.PathLike[str] | None = None,
    expected: Sequence[str] = (),
    on_record: Callable[[SessionRecord, Path], object] | None = None,
) -> SessionRecord:
    """Merge every ``session-*.json`` in ``session_dir`` into one record, written atomically to
    ``record-<run-id>.json`` there.

    With ``repo`` (git mode) the record is also committed to ``.truepar/sessions/<run-id>.json``
    in one commit listing every session. ``expected`` names agents that should have a log: the
    ones without are listed as missing. ``on_record(record, path)`` runs last, e.g. to record
    the file in the evidence ledger.
    """
    folder = Path(session_dir)
    if not folder.is_dir():
        raise BadInput(f"sessions folder {str(folder)!r} does not exist")
    logs = sorted((load_session(p) for p in folder.glob("session-*.json")), key=lambda x: x.agent)
    if not logs and not expected:
        raise BadInput(f"no session logs (session-*.json) in {folder}")
    run_id = check_name(run_id or new_run_id(), "run id")
    present = {x.agent for x in logs}
    record = SessionRecord(
        run_id=run_id,
        created_utc=utc_now(),
        sessions=tuple(logs),
        missing=tuple(sorted(set(expected) - present)),
    )
    if repo is not None:
        record = _commit(repo, record)
    record_path = folder / f"record-{run_id}.json"
    atomic_write_json(record_path, record.to_dict())
    if on_record is not None:
        on_record(record, record_path)
    return record


def _commit(repo: str | os.PathLike[str], record: SessionRecord) -> SessionRecord:
    info = open_repo(repo)
    rel = f".truepar/sessions/{record.run_id}.json"
    target = info.root / rel
    if target.exists():
        raise BadInput(f"{rel} already exists in {info.root}; consolidate under another run id")
    with admin_lock(info, name=MERGE_LOCK):
        atomic_write_json(target, {**record.to_dict(), "committed_path": rel})
        proc = git(["add", "--force", "--", rel], cwd=info.root, check=False)
        if proc.returncode == 0:
            # A pathspec commits that file only: whatever else the user has staged stays staged.
            proc = git(
                ["commit", "--quiet", "-m", record.message(), "--", rel],
                cwd=info.root,
                check=False,
            )
        if proc.returncode != 0:
            git(["reset", "--quiet", "--", rel], cwd=info.root, check=False)
            target.unlink(missing_ok=True)
            raise GitError(
                f"committing the session record in {info.root} failed: {last_line(proc.stderr)}"
            )
        sha = git(["rev-parse", "HEAD"], cwd=info.root).stdout.strip()
    return dataclasses.replace(record, commit=sha, committed_path=rel)
