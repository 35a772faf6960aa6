"""``bash``: run a command as a real subprocess and capture what it says.

``argv`` (a list, no shell) by default; a shell only when ``shell = true`` is asked for. Each child
leads its own process group, so a timeout or cancel kills it *and* whatever it started; its CPU
comes from its own rusage (``os.wait4``), not from guesses. The spawn, capture and wait live in
:mod:`truepar.tools.subprocess_run`, shared with the ``agent`` tool; this module shapes the value.
"""

from __future__ import annotations

import os
import shlex
from typing import Any, Literal

from pydantic import Field, model_validator

from truepar.tools.base import DEFAULT_MAX_BYTES, OpBase, Tool, ToolContext, ToolOutput
from truepar.tools.subprocess_run import (
    Child,
    await_child,
    become_worker,
    kill_all_children,
    wait,
)

# ``become_worker`` and ``kill_all_children`` stay reachable here: the processes backend's
# worker calls them as ``bash.become_worker()``.
__all__ = ("BASH", "BashOp", "arun", "become_worker", "kill_all_children", "run")


class BashOp(OpBase):
    tool: Literal["bash"] = "bash"
    argv: tuple[str, ...] | None = None
    #: A shell command line; only with ``shell = true``.
    command: str | None = None
    shell: bool = False
    #: Working directory, relative to the plan's root (confined to it).
    cwd: str = "."
    env: dict[str, str] = Field(default_factory=dict)
    #: Start from an empty environment (plus ``env``) instead of inheriting this one.
    env_clear: bool = False
    stdin: str | None = None
    #: Bytes kept of stdout and of stderr each; the rest is read and counted, not kept.
    max_output_bytes: int = Field(default=DEFAULT_MAX_BYTES, gt=0)
    #: A non-zero exit code fails the op (its output is kept either way).
    check: bool = True

    @model_validator(mode="after")
    def _argv_or_command(self) -> BashOp:
        if self.shell:
            if not self.command and not self.argv:
                raise ValueError("shell = true needs command = '...'")
        elif self.command is not None:
            raise ValueError("command needs shell = true; or give argv = ['prog', 'arg', ...]")
        elif not self.argv:
            raise ValueError("give argv = ['prog', 'arg', ...] (or command with shell = true)")
        return self

    def args(self) -> list[str]:
        if self.shell:
            line = self.command if self.command else shlex.join(self.argv or ())
            return ["/bin/sh", "-c", line]
        return list(self.argv or ())

    def display(self) -> str:
        return self.command if self.shell and self.command else shlex.join(self.argv or ())


def _start(op: BashOp, ctx: ToolContext) -> Child:
    env: dict[str, str] | None = None  # inherit, without copying os.environ per spawn
    if op.env_clear or op.env:
        env = {} if op.env_clear else dict(os.environ)
        env.update(op.env)
    return Child(
        ctx,
        op.args(),
        display=op.display(),
        cwd=op.cwd,
        env=env,
        stdin=op.stdin.encode() if op.stdin is not None else None,
        max_output_bytes=op.max_output_bytes,
    )


def _output(op: BashOp, child: Child, code: int) -> ToolOutput:
    value: dict[str, Any] = {
        "argv": op.args(),
        "exit_code": code,
        "stdout": child.out.text(),
        "stderr": child.err.text(),
        "stdout_bytes": child.out.total,
        "stderr_bytes": child.err.total,
        "stdout_truncated": child.out.truncated,
        "stderr_truncated": child.err.truncated,
    }
    shown = op.display()
    if len(shown) > 60:
        shown = shown[:57] + "..."
    summary = f"{shown} → exit {code} ({child.out.total + child.err.total} B out)"
    error = child.error(code, check=op.check)
    return ToolOutput(value, summary, child.out.kept + child.err.kept, error)


def run(op: BashOp, ctx: ToolContext) -> ToolOutput:
    child = _start(op, ctx)
    return _output(op, child, wait(child, ctx))


async def arun(op: BashOp, ctx: ToolContext) -> ToolOutput:
    child = _start(op, ctx)
    return _output(op, child, await await_child(child, ctx))


BASH = Tool("bash", BashOp, run, arun)
