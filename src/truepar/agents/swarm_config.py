"""``AGENTS.toml``: a swarm of command-line agents — a template × a list of tasks, or explicit
entries — with the repository they change, how they are isolated, merged and capped.

```toml
[swarm]
name = "three fixes"
repo = "repo"            # a git checkout the agents change (relative to this file); optional
isolation = "worktree"   # one worktree and branch per agent; "none": the checkout itself
merge = "merge"          # how branches come back: merge | rebase | none
workers = 8              # agents at once
timeout = 600            # seconds per agent
aggregate = "vote"       # none | merge | vote | escalate: combine the agents' JSON results

[template]
argv = ["python3", "agent.py"]
prompt = "Fix {task} in {file}"   # {name}, {index}, every key of the task, {here} (this
                                  # file's folder) and {python} (truepar's interpreter)

[[task]]
name = "fix-a"
task = "the typo"
file = "a.txt"

[resources.github]         # budgets, exactly as in a plan
provider = "github:core"
policy = "reduce"
```

``count = N`` under ``[swarm]`` makes N tasks named ``agent-0`` … (for load tests and
fan-outs of identical workers). Errors are one line naming the file and the field.
"""

from __future__ import annotations

import re
import string
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from truepar.errors import PlanError
from truepar.plan.load import parse_plan_text, read_plan_text
from truepar.plan.models import Resource
from truepar.tools.base import labelled
from truepar.tools.bounds import MAX_COUNT, MAX_DURATION_S, MAX_WORKERS

Aggregate = Literal["none", "merge", "vote", "escalate"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class SwarmSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = "swarm"
    repo: str | None = None
    isolation: Literal["worktree", "none"] = "worktree"
    base: str = "HEAD"
    merge: Literal["merge", "rebase", "none"] = "merge"
    workers: int = Field(default=8, ge=1, le=MAX_WORKERS)
    backend: Literal["async", "threads"] = "async"
    timeout: float | None = Field(default=None, gt=0, le=MAX_DURATION_S)
    #: Where each run's session logs go (relative to this file): ``<sessions>/<run-id>/``.
    sessions: str = ".truepar/swarm"
    aggregate: Aggregate = "none"
    escalate_to: str = "human"
    count: int | None = Field(default=None, ge=1, le=MAX_WORKERS)
    #: Agents only read the repository: no worktrees, nothing to merge.
    read_only: bool = False


class AgentEntry(BaseModel):
    """One agent: the template's fields, any of them overridden."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str | None = None
    argv: tuple[str, ...] | None = None
    prompt: str | None = None
    prompt_via: Literal["stdin", "arg"] | None = None
    env: dict[str, str] | None = None
    timeout: float | None = Field(default=None, gt=0, le=MAX_DURATION_S)
    resource: str | None = None
    cost: float | None = Field(default=None, ge=0, le=MAX_COUNT)
    tokens: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    tags: tuple[str, ...] | None = None
    read_only: bool | None = None


class AgentSpec(BaseModel):
    """A resolved agent: everything filled in."""

    model_config = ConfigDict(frozen=True)

    name: str
    index: int
    task: str
    argv: tuple[str, ...]
    prompt: str
    prompt_via: Literal["stdin", "arg"] = "stdin"
    env: dict[str, str] = Field(default_factory=dict)
    timeout: float | None = None
    resource: str | None = None
    cost: float = 1
    tokens: int = 0
    tags: tuple[str, ...] = ()
    read_only: bool = False


class SwarmFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    swarm: SwarmSection = Field(default_factory=SwarmSection)
    template: AgentEntry = Field(default_factory=AgentEntry)
    task: tuple[dict[str, Any], ...] = ()
    agent: tuple[AgentEntry, ...] = ()
    resources: dict[str, Resource] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _some_agents(self) -> SwarmFile:
        if not (self.task or self.agent or self.swarm.count):
            raise ValueError("no agents: add [[task]] entries, [[agent]] entries or swarm.count")
        return self


class Swarm(BaseModel):
    """A loaded swarm: its settings, its agents, its resources and where it came from."""

    model_config = ConfigDict(frozen=True)

    settings: SwarmSection
    agents: tuple[AgentSpec, ...]
    resources: dict[str, Resource]
    source: Path
    base_dir: Path

    @property
    def repo(self) -> Path | None:
        return (
            None if self.settings.repo is None else (self.base_dir / self.settings.repo).resolve()
        )

    @property
    def uses_worktrees(self) -> bool:
        return (
            self.repo is not None
            and self.settings.isolation == "worktree"
            and not self.settings.read_only
        )


def _fill(text: str, values: dict[str, Any], where: str) -> str:
    try:
        return string.Formatter().vformat(text, (), values)
    except (KeyError, IndexError, ValueError) as exc:
        raise PlanError(
            f"{where}: cannot fill in {text!r}: {exc} is not a task field "
            "(write {{ and }} for literal braces)"
        ) from exc


def _builtins(source: Path) -> dict[str, str]:
    """``{here}``: the swarm file's folder (absolute: agents run in their own worktrees);
    ``{python}``: the interpreter running truepar."""
    return {"here": str(source.resolve().parent), "python": sys.executable}


def _resolve(doc: SwarmFile, source: Path) -> list[AgentSpec]:
    tmpl = doc.template
    tasks: list[dict[str, Any]] = [dict(t) for t in doc.task]
    if doc.swarm.count and not tasks and not doc.agent:
        tasks = [{"name": f"agent-{i}"} for i in range(doc.swarm.count)]
    out: list[AgentSpec] = []
    entries: list[tuple[dict[str, Any], AgentEntry]] = [(t, tmpl) for t in tasks]
    entries += [({"name": a.name}, a.model_copy(update={})) for a in doc.agent]
    for index, (given, entry) in enumerate(entries):
        name = str(given.get("name") or entry.name or f"agent-{index}")
        where = f"{source}: agent {name!r}"
        if not _NAME.match(name):
            raise PlanError(f"{where}: a name is letters, digits, '.', '_' or '-' (≤ 63)")
        values = {**given, "name": name, "index": index, **_builtins(source)}
        values.setdefault("task", values.get("prompt", ""))

        def pick(field: str, entry: AgentEntry = entry) -> Any:
            mine = getattr(entry, field)
            return mine if mine is not None else getattr(tmpl, field)

        argv = pick("argv")
        if not argv:
            raise PlanError(f"{where}: no argv (set template.argv or the agent's argv)")
        prompt = pick("prompt")
        prompt = _fill(prompt, values, where) if prompt is not None else str(values["task"])
        out.append(
            AgentSpec(
                name=name,
                index=index,
                task=str(values["task"]),
                argv=tuple(_fill(a, values, where) for a in argv),
                prompt=prompt,
                prompt_via=pick("prompt_via") or "stdin",
                env={k: _fill(v, values, where) for k, v in (pick("env") or {}).items()},
                timeout=pick("timeout") or doc.swarm.timeout,
                resource=pick("resource"),
                cost=pick("cost") if pick("cost") is not None else 1,
                tokens=pick("tokens") or 0,
                tags=pick("tags") or (),
                read_only=bool(pick("read_only") or doc.swarm.read_only),
            )
        )
    names = [a.name for a in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise PlanError(f"{source}: duplicate agent name(s): {', '.join(dupes)}")
    for a in out:
        if a.resource is not None and a.resource not in doc.resources:
            known = ", ".join(sorted(doc.resources)) or "none declared"
            raise PlanError(
                f"{source}: agent {a.name!r}: unknown resource {a.resource!r} ({known})"
            )
    return out


def load_swarm(path: str | Path) -> Swarm:
    """Read and check an AGENTS.toml; :class:`PlanError` in one line for anything wrong."""
    source = Path(path)
    if not source.exists():
        raise PlanError(f"{source}: no such swarm file")
    # Read and parsed as plan files are: bounded, a byte-order mark dropped, nesting checked.
    raw = parse_plan_text(read_plan_text(source), source, toml=True)
    try:
        doc = SwarmFile.model_validate(raw)
    except ValidationError as exc:
        raise PlanError(labelled(f"{source}:", exc)) from exc
    agents = _resolve(doc, source)
    base = source.resolve().parent
    swarm = Swarm(
        settings=doc.swarm,
        agents=tuple(agents),
        resources=doc.resources,
        source=source,
        base_dir=base,
    )
    if swarm.repo is not None and not (swarm.repo / ".git").exists():
        raise PlanError(f"{source}: field 'swarm.repo': {swarm.repo} is not a git checkout")
    return swarm
