"""One agent's session log: a JSON file and a short Markdown summary, its own pair.

Agents running at the same time never share a file: each log is ``session-<agent>.json`` and
``session-<agent>.md`` in the sessions folder, each written atomically (:mod:`truepar.fileio`),
so a reader sees a whole old log or a whole new one and two agents cannot interleave lines.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from truepar.agents.merging import MergeOutcome
from truepar.agents.worktrees import Commit, check_name
from truepar.errors import BadInput
from truepar.fileio import atomic_write_json, atomic_write_text

__all__ = (
    "SessionLog",
    "SessionStatus",
    "load_session",
    "record_merge",
    "session_paths",
    "utc_now",
    "write_session",
)

SessionStatus = Literal["ok", "failed", "timeout", "error"]


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclasses.dataclass(frozen=True)
class SessionLog:
    """One agent's session: what it was asked, what ran, how it ended, what it changed."""

    agent: str
    task: str
    command: tuple[str, ...]
    cwd: str
    start_utc: str
    end_utc: str
    duration_s: float
    status: SessionStatus
    exit_code: int | None
    output_tail: tuple[str, ...] = ()
    worktree: str | None = None
    branch: str | None = None
    base: str | None = None
    commits: tuple[Commit, ...] = ()
    diff_stat: Mapping[str, Any] | None = None
    dirty_files: tuple[str, ...] = ()
    merge: MergeOutcome | None = None
    tokens: int | None = None
    detail: str = ""

    def outcome(self) -> str:
        """The phrase the consolidated commit message lists for this session."""
        n = len(self.commits)
        commits = f"{n} commit{'' if n == 1 else 's'}"
        if self.status == "timeout":
            return f"timed out after {self.duration_s:.1f}s ({commits})"
        if self.status == "error":
            return f"error: {self.detail}"
        if self.status == "failed":
            return f"failed (exit {self.exit_code}, {commits})"
        if self.merge is not None:
            return self.merge.summary()
        return f"ok ({commits}, not merged)" if self.worktree else "ok"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["command"] = list(self.command)
        data["output_tail"] = list(self.output_tail)
        data["dirty_files"] = list(self.dirty_files)
        data["diff_stat"] = None if self.diff_stat is None else dict(self.diff_stat)
        data["merge"] = None if self.merge is None else self.merge.to_dict()
        data["outcome"] = self.outcome()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SessionLog:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        for key in ("command", "output_tail", "dirty_files"):
            values[key] = tuple(values.get(key) or ())
        values["commits"] = tuple(Commit(**c) for c in values.get("commits") or ())
        merge = values.get("merge")
        values["merge"] = None if merge is None else MergeOutcome.from_dict(merge)
        return cls(**values)

    def to_markdown(self) -> str:
        lines = [f"# Agent `{self.agent}`: {self.outcome()}", ""]
        if self.task:
            lines.append(f"- task: {self.task}")
        lines.append(f"- command: `{' '.join(self.command)}` in `{self.cwd}`")
        if self.worktree:
            lines.append(f"- worktree: `{self.worktree}` on branch `{self.branch}`")
        lines.append(
            f"- ran {self.start_utc} → {self.end_utc} ({self.duration_s:.2f} s), "
            f"status {self.status}, exit code {self.exit_code}"
        )
        for c in self.commits:
            lines.append(f"- commit `{c.sha[:12]}` {c.subject}")
        if self.diff_stat:
            d = self.diff_stat
            lines.append(
                f"- diff: {d.get('files_changed')} file(s), +{d.get('insertions')} "
                f"−{d.get('deletions')}"
            )
        if self.dirty_files:
            lines.append(f"- uncommitted: {', '.join(self.dirty_files)}")
        if self.tokens is not None:
            lines.append(f"- tokens: {self.tokens}")
        if self.detail:
            lines.append(f"- note: {self.detail}")
        if self.output_tail:
            lines += ["", "Last output:", "", "```text", *self.output_tail, "```"]
        return "\n".join(lines) + "\n"


def session_paths(session_dir: str | os.PathLike[str], agent: str) -> tuple[Path, Path]:
    """The JSON and Markdown files of ``agent``'s log: its own pair, shared with no one."""
    check_name(agent)
    folder = Path(session_dir)
    return folder / f"session-{agent}.json", folder / f"session-{agent}.md"


def write_session(session_dir: str | os.PathLike[str], log: SessionLog) -> Path:
    """Write ``log`` as its agent's JSON and Markdown pair, each atomically; return the JSON."""
    json_path, md_path = session_paths(session_dir, log.agent)
    atomic_write_json(json_path, log.to_dict())
    atomic_write_text(md_path, log.to_markdown())
    return json_path


def load_session(path: str | os.PathLike[str]) -> SessionLog:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return SessionLog.from_dict(data)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise BadInput(f"session log {str(path)!r} cannot be read: {exc}") from exc


def record_merge(
    session_dir: str | os.PathLike[str], agent: str, outcome: MergeOutcome
) -> SessionLog:
    """Add the merge outcome to ``agent``'s log (rewritten atomically) once it is known."""
    json_path, _ = session_paths(session_dir, agent)
    log = dataclasses.replace(load_session(json_path), merge=outcome)
    write_session(session_dir, log)
    return log
