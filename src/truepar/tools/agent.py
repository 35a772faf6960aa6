"""``agent``: a command-line agent (any program that takes a prompt) run as a real subprocess.

It is a ``bash`` op with an agent's conventions: the prompt goes in on stdin (or as the last
argument), the agent's share of each budget comes out as ``TRUEPAR_BUDGET_<NAME>`` variables,
and the value keeps the last line it printed and, when that line is JSON, the parsed result —
the usual way a headless agent hands back a structured answer. Spawn, capture, process-group
kill and rusage are the ones ``bash`` uses (:mod:`truepar.tools.subprocess_run`).

The isolation fields (``repo``, ``isolation``, ``branch``, ``base``, ``read_only``, ``merge``)
are declared and checked here and acted on by the swarm orchestrator: this tool runs the agent
where ``cwd`` says. What it does tell the graph is the conflict: an agent that changes its
checkout in place (``isolation = "none"``) writes ``repo``, so two of them never overlap.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from truepar.tools.base import DEFAULT_MAX_BYTES, OpBase, Tool, ToolContext, ToolOutput
from truepar.tools.subprocess_run import Child, await_child, wait

#: Bytes of the end of stdout kept past ``max_output_bytes``, for ``last_line`` and ``result``.
_TAIL_BYTES = 1 << 16
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")

Isolation = Literal["worktree", "none"]


def budget_variable(resource: str) -> str:
    """``TRUEPAR_BUDGET_<NAME>``: the name upper-cased, each non-alphanumeric character ``_``."""
    return "TRUEPAR_BUDGET_" + _NOT_ALNUM.sub("_", resource).upper()


class AgentOp(OpBase):
    """Start ``argv`` with ``prompt`` and wait for it to finish."""

    tool: Literal["agent"] = "agent"
    #: The agent's command line; the program is looked up on ``PATH``.
    argv: tuple[str, ...] = Field(min_length=1)
    prompt: str
    #: ``stdin``: the prompt is the child's standard input; ``arg``: its last argument.
    prompt_via: Literal["stdin", "arg"] = "stdin"
    #: Working directory, relative to the plan's root (confined to it).
    cwd: str = "."
    #: Variables set on top of the inherited environment.
    env: dict[str, str] = Field(default_factory=dict)
    #: This agent's share of each budget resource, exported as ``TRUEPAR_BUDGET_<NAME>``.
    budget_share: dict[str, float] = Field(default_factory=dict)
    #: Bytes kept of stdout and of stderr each; the rest is read and counted, not kept.
    max_output_bytes: int = Field(default=DEFAULT_MAX_BYTES, gt=0)
    #: A non-zero exit code fails the op (its output is kept either way).
    check: bool = True
    #: A git checkout (relative to the root) the agent works on.
    repo: str | None = None
    #: ``worktree``: a fresh worktree per agent; ``none``: the checkout itself. Unset with a
    #: ``repo`` means ``worktree``.
    isolation: Isolation | None = None
    #: The worktree's branch (the orchestrator names one when unset).
    branch: str | None = None
    #: What the worktree starts from.
    base: str = "HEAD"
    #: The agent only reads the checkout: nothing to merge, no write conflict.
    read_only: bool = False
    #: How a worktree's commits come back to ``base``'s branch.
    merge: Literal["merge", "rebase", "none"] = "merge"

    @field_validator("argv", mode="before")
    @classmethod
    def _one_or_many_argv(cls, v: Any) -> Any:
        return (v,) if isinstance(v, str) else v

    @field_validator("budget_share")
    @classmethod
    def _shares(cls, v: dict[str, float]) -> dict[str, float]:
        seen: dict[str, str] = {}
        for name, share in v.items():
            if not name:
                raise ValueError("a budget resource needs a name")
            if share < 0:
                raise ValueError(f"the share of {name!r} is negative ({share:g})")
            var = budget_variable(name)
            if var in seen:
                raise ValueError(f"{seen[var]!r} and {name!r} both become {var}; rename one")
            seen[var] = name
        return v

    @model_validator(mode="after")
    def _isolation(self) -> AgentOp:
        if self.repo is None:
            given = sorted(
                {"isolation", "branch", "base", "read_only", "merge"} & self.model_fields_set
            )
            if given:
                raise ValueError(f"{', '.join(given)} needs repo = 'path/to/checkout'")
        elif self.effective_isolation() == "none":
            if self.branch is not None:
                raise ValueError("branch needs isolation = 'worktree' (none works in place)")
            if "merge" in self.model_fields_set and self.merge != "none":
                raise ValueError("merge needs isolation = 'worktree' (none works in place)")
        return self

    def effective_isolation(self) -> Isolation | None:
        """How the agent is isolated: ``None`` without a repo, ``worktree`` unless told ``none``."""
        if self.repo is None:
            return None
        return self.isolation or "worktree"

    def implied_reads(self) -> tuple[str, ...]:
        """The checkout, when the agent works in it. A worktree starts from a commit, not from
        the checkout's files, so ops that change those files do not concern it."""
        return (self.repo,) if self.repo is not None and self.isolation == "none" else ()

    def implied_writes(self) -> tuple[str, ...]:
        """The checkout, when the agent changes it in place."""
        if self.repo is not None and self.isolation == "none" and not self.read_only:
            return (self.repo,)
        return ()

    def args(self) -> list[str]:
        return [*self.argv, self.prompt] if self.prompt_via == "arg" else list(self.argv)

    def display(self) -> str:
        shown = shlex.join(self.argv)
        return f"{shown} <prompt>" if self.prompt_via == "arg" else shown

    def environment(self) -> dict[str, str]:
        """The child's environment: this one, ``env``, then the budget variables."""
        env = dict(os.environ)
        env.update(self.env)
        env.update({budget_variable(k): repr(float(v)) for k, v in self.budget_share.items()})
        return env


def _start(op: AgentOp, ctx: ToolContext) -> Child:
    return Child(
        ctx,
        op.args(),
        display=op.display(),
        cwd=op.cwd,
        env=op.environment() if op.env or op.budget_share else None,
        stdin=op.prompt.encode() if op.prompt_via == "stdin" else None,
        max_output_bytes=op.max_output_bytes,
        tail_bytes=_TAIL_BYTES,
    )


def parse_result(line: str) -> Any:
    """The JSON object or array on ``line``, or ``None``: a bare word or number is just text."""
    if not line.startswith(("{", "[")):
        return None
    try:
        return json.loads(line)
    except ValueError:
        return None


def _output(op: AgentOp, child: Child, code: int) -> ToolOutput:
    last = child.out.last_line()
    value: dict[str, Any] = {
        "argv": op.args() if op.prompt_via == "stdin" else [*op.argv, "<prompt>"],
        "exit_code": code,
        "stdout": child.out.text(),
        "stderr": child.err.text(),
        "last_line": last,
        "result": parse_result(last),
        "stdout_bytes": child.out.total,
        "stderr_bytes": child.err.total,
        "stdout_truncated": child.out.truncated,
        "stderr_truncated": child.err.truncated,
    }
    shown = last if len(last) <= 60 else last[:57] + "..."
    summary = f"{op.argv[0]} → exit {code}" + (f": {shown}" if shown else "")
    error = child.error(code, check=op.check)
    return ToolOutput(value, summary, child.out.kept + child.err.kept, error)


#: The output of every agent running in this process, by op id: what a live view shows while
#: they run (a swarm's rows). Plain dict operations, atomic under the GIL.
_RUNNING: dict[str, Child] = {}


def live_last_line(op_id: str) -> str:
    """The last line agent ``op_id`` has printed so far, while it runs here; else ``""``."""
    child = _RUNNING.get(op_id)
    return child.out.last_line() if child is not None else ""


def run(op: AgentOp, ctx: ToolContext) -> ToolOutput:
    child = _start(op, ctx)
    _RUNNING[op.id] = child
    try:
        return _output(op, child, wait(child, ctx))
    finally:
        _RUNNING.pop(op.id, None)


async def arun(op: AgentOp, ctx: ToolContext) -> ToolOutput:
    child = _start(op, ctx)
    _RUNNING[op.id] = child
    try:
        return _output(op, child, await await_child(child, ctx))
    finally:
        _RUNNING.pop(op.id, None)


AGENT = Tool("agent", AgentOp, run, arun)
