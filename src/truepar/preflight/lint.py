"""``truepar lint``: what in a plan makes parallel runs unsafe or slower than they look.

Every finding has a stable rule id, a severity, the ops involved, what is wrong and how to fix
it. ``error`` findings make ``truepar lint`` exit 1.

| id | severity | what |
|---|---|---|
| TP001 unordered-writes | error | two ops write one path or resource; only plan order orders them |
| TP002 read-write-race | warning | an op reads what another writes; only plan order orders them |
| TP003 unbudgeted-rate-limit | error | ops tagged for a rate-limited service, no budget |
| TP004 shared-checkout | error | agents change one checkout in place, and may run at once |
| TP005 detached-worktree | error | a worktree of an agent's repository is on a detached HEAD |
| TP006 sync-on-async | error | a plain python op on the async backend blocks its loop |
| TP007 fan-out-over-capacity | warning | more ops may start at once on a resource than it allows |
| TP008 requests-not-honoured | warning | resource requests on a backend that ignores them |

What the scheduler does about each at run time (docs/parallel-patterns.md says more): TP001,
TP002 and TP004 (agents changing one checkout in place) it makes safe, by running the
conflicting ops one after the other in plan order (so the lint finding is about intent: say the
order with ``after``); TP007 it enforces (the excess waits); TP006 it measures rather than hides
(the run's verdict says ``serialized``); TP008 it ignores (only a cluster backend, ``ray``, holds
an op's ``num_cpus``/``num_gpus``/``custom_resources`` for it); TP003 it cannot fix, so a
budgeted resource is needed.
It refuses (:func:`refusals`) TP005 — an agent never starts in a repository whose worktrees
include a detached HEAD — and the TP004 case of agents asking for worktree isolation in a plan:
only ``truepar swarm`` creates worktrees, and running them in place would be the opposite of
what they asked for.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from truepar.backends import backend_class
from truepar.errors import BackendUnavailable, PlanError
from truepar.git import GitError, detached_worktrees
from truepar.plan.graph import Graph, build_graph
from truepar.plan.models import Plan
from truepar.tools import OpBase, PythonOp

Severity = Literal["error", "warning"]

#: Tags that mark an op as calling a rate-limited service.
RATE_LIMITED_TAGS = frozenset(
    {"github", "llm", "openai", "anthropic", "api", "rate-limited", "rate_limited"}
)

RULES: dict[str, tuple[str, Severity]] = {
    "TP001": ("unordered-writes", "error"),
    "TP002": ("read-write-race", "warning"),
    "TP003": ("unbudgeted-rate-limit", "error"),
    "TP004": ("shared-checkout", "error"),
    "TP005": ("detached-worktree", "error"),
    "TP006": ("sync-on-async", "error"),
    "TP007": ("fan-out-over-capacity", "warning"),
    "TP008": ("requests-not-honoured", "warning"),
}


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    ops: tuple[str, ...]
    message: str
    fix: str

    @property
    def name(self) -> str:
        return RULES[self.rule][0]

    @property
    def severity(self) -> Severity:
        return RULES[self.rule][1]

    def line(self) -> str:
        return f"{self.rule} {self.name} [{self.severity}] {', '.join(self.ops)}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "name": self.name,
            "severity": self.severity,
            "ops": list(self.ops),
            "message": self.message,
            "fix": self.fix,
        }


def _ancestors(plan: Plan) -> list[int]:
    """Per op, a bit set of the ops ``after`` (declared order only) puts before it."""
    graph = build_graph(plan)
    index = {op_id: i for i, op_id in enumerate(graph.ids)}
    anc = [0] * len(plan.ops)
    for i in graph.order:
        for dep in plan.ops[i].after:
            j = index[dep]
            anc[i] |= anc[j] | (1 << j)
    return anc


def _ordered(anc: list[int], a: int, b: int) -> bool:
    return bool(anc[b] >> a & 1 or anc[a] >> b & 1)


def _conflicts(plan: Plan, graph: Graph, anc: list[int]) -> Iterator[Finding]:
    index = {op_id: i for i, op_id in enumerate(graph.ids)}
    for edge in graph.edges:
        if edge.reason == "declared in after":
            continue
        a, b = index[edge.before], index[edge.after]
        if _ordered(anc, a, b):
            continue
        padded = f" {edge.reason} "
        both_write = edge.reason.startswith("both write") or (
            " writes " in padded and " reads " not in padded
        )
        # The scheduler's rule, said as it is: conflicting ops run one after the other in plan
        # order. The finding is about intent: only their place in the file orders them.
        fix = (
            f"add after = [{edge.before!r}] to {edge.after!r} if {edge.before!r} first is what "
            "you mean (or write different paths)"
        )
        order = (
            f"only their place in the plan orders them: truepar runs {edge.before!r} first, "
            f"then {edge.after!r}"
        )
        if _agents_in_place(plan.ops[a], plan.ops[b]):
            continue  # TP004 says it better
        if both_write:
            yield Finding(
                "TP001",
                (edge.before, edge.after),
                f"{edge.reason}, and {order}, whose content stays: move one op and it changes",
                fix,
            )
        else:
            yield Finding(
                "TP002",
                (edge.before, edge.after),
                f"{edge.reason}, and {order}: move one op and the reader sees other content",
                fix,
            )


def _agents_in_place(*ops: OpBase) -> bool:
    return all(op.tool == "agent" and _isolation(op) == "none" for op in ops)


def _isolation(op: OpBase) -> str | None:
    repo = getattr(op, "repo", None)
    if repo is None:
        return None
    return getattr(op, "isolation", None) or "worktree"


def _rate_limits(plan: Plan) -> Iterator[Finding]:
    unbudgeted: list[str] = []
    for op in plan.ops:
        tags = RATE_LIMITED_TAGS.intersection(op.tags)
        if not tags:
            continue
        resource = plan.resources.get(op.resource) if op.resource else None
        if resource is None or not resource.has_budget:
            unbudgeted.append(op.id)
    if unbudgeted:
        yield Finding(
            "TP003",
            tuple(unbudgeted),
            f"{len(unbudgeted)} op(s) call a rate-limited service but use no resource with a "
            "budget: nothing stops the fan-out from exhausting the quota",
            "declare [resources.NAME] with per_minute/per_hour/tokens_per_minute or a provider "
            '(e.g. "github:core"), and set resource = "NAME" on these ops',
        )


def _unprovided_isolation(plan: Plan) -> Iterator[Finding]:
    """Agents that ask for a worktree in a plan: ``truepar run`` has none to give them."""
    wanting = [
        op.id
        for op in plan.ops
        if op.tool == "agent"
        and _isolation(op) == "worktree"
        and not getattr(op, "read_only", False)
    ]
    if wanting:
        yield Finding(
            "TP004",
            tuple(wanting),
            f"{len(wanting)} agent(s) ask for worktree isolation, which only truepar swarm "
            "provides: run as a plan, they would change the checkout itself",
            "deploy them with truepar swarm AGENTS.toml (one worktree and branch each), or set "
            'isolation = "none" (they are then run one at a time) or read_only = true',
        )


def _shared_checkouts(plan: Plan, anc: list[int]) -> Iterator[Finding]:
    by_repo: dict[str, list[int]] = {}
    for i, op in enumerate(plan.ops):
        if op.tool == "agent" and _isolation(op) == "none" and not getattr(op, "read_only", False):
            repo = str((plan.root / str(getattr(op, "repo", ""))).resolve())
            by_repo.setdefault(repo, []).append(i)
    for repo, ops in by_repo.items():
        parallel = [i for i in ops if any(j != i and not _ordered(anc, i, j) for j in ops)]
        if len(parallel) >= 2:
            yield Finding(
                "TP004",
                tuple(plan.ops[i].id for i in parallel),
                f"{len(parallel)} agents change the checkout {repo} in place and may run at once",
                'give each isolation = "worktree" (its own branch and folder), or read_only = '
                "true if it only reads; truepar runs them one at a time meanwhile",
            )


def _repos(plan: Plan) -> dict[Path, list[str]]:
    repos: dict[Path, list[str]] = {}
    for op in plan.ops:
        if op.tool != "agent":
            continue  # asking other ops for a field they lack costs pydantic an exception each
        repo = getattr(op, "repo", None)
        if repo is not None:
            repos.setdefault((plan.root / str(repo)).resolve(), []).append(op.id)
    return repos


def _detached(plan: Plan) -> Iterator[Finding]:
    for repo, ops in _repos(plan).items():
        yield from detached_in(repo, tuple(ops))


def detached_in(repo: Path, ops: tuple[str, ...]) -> Iterator[Finding]:
    """TP005 for each worktree of ``repo`` on a detached HEAD (``ops`` are the agents there)."""
    if (repo / ".git").exists():
        try:
            detached = detached_worktrees(repo)
        except GitError:
            detached = []
        for w in detached:
            yield Finding(
                "TP005",
                ops,
                f"worktree {w.path} of {repo} is on a detached HEAD: commits made there belong "
                "to no branch and are lost when it is removed",
                f"git -C {w.path} switch -c <branch> (to keep its work), or git worktree "
                f"remove {w.path}",
            )


def _is_sync(op: PythonOp, base_dir: Path) -> bool | None:
    """Whether the op's function is a plain one; ``None`` when it cannot be imported here."""
    fn: Any = op.call
    if isinstance(fn, str):
        module, _, name = fn.partition(":")
        added = str(base_dir) not in sys.path
        if added:
            sys.path.insert(0, str(base_dir))
        try:
            fn = getattr(importlib.import_module(module), name)
        except Exception:
            return None
        finally:
            if added:
                sys.path.remove(str(base_dir))
    return not inspect.iscoroutinefunction(fn)


def _sync_on_async(plan: Plan) -> Iterator[Finding]:
    blocking = [
        op.id
        for op in plan.ops
        if isinstance(op, PythonOp)
        and backend_class(op.backend or plan.defaults.backend).event_loop
        and _is_sync(op, plan.base_dir)
    ]
    if blocking:
        yield Finding(
            "TP006",
            tuple(blocking),
            f"{len(blocking)} plain python op(s) on the async backend: each blocks the event "
            "loop while it runs, so the ops around it wait — 'parallel' in name only",
            'make the function async def, or run these ops on backend = "threads" (I/O) or '
            '"processes" (CPU)',
        )


def _fan_out(plan: Plan, graph: Graph) -> Iterator[Finding]:
    depth = [0] * len(graph.ids)
    for i in graph.order:
        depth[i] = max((depth[p] + 1 for p in graph.preds[i]), default=0)
    for name, resource in plan.resources.items():
        if resource.max_concurrent is None:
            continue
        levels: dict[int, list[str]] = {}
        for i, op in enumerate(plan.ops):
            if op.resource == name:
                levels.setdefault(depth[i], []).append(op.id)
        widest = max(levels.values(), key=len, default=[])
        if len(widest) > resource.max_concurrent:
            yield Finding(
                "TP007",
                tuple(widest),
                f"{len(widest)} ops on resource {name!r} may start at once, but it allows "
                f"{resource.max_concurrent}: the rest wait, so expect at most "
                f"{resource.max_concurrent}× from them",
                f"raise resources.{name}.max_concurrent if the service allows it, or expect the "
                "queueing (truepar enforces the cap)",
            )


def _honours_requests(backend: str) -> bool:
    try:
        return bool(getattr(backend_class(backend), "honours_requests", False))
    except BackendUnavailable:  # a plug-in whose dependency is missing: it runs nothing here
        return False


def _requests(plan: Plan) -> Iterator[Finding]:
    """Requests a backend does not hold for its ops (a capability: ``honours_requests``) are
    ignored there; say so, and say when this machine could never give what is asked."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    ignored: dict[str, list[OpBase]] = {}
    for op in plan.ops:
        where = op.backend or plan.defaults.backend
        if op.asks() and not _honours_requests(where):
            ignored.setdefault(where, []).append(op)
    for where, ops in ignored.items():
        most = max((op.num_cpus or 0 for op in ops), default=0)
        beyond = f"; {most:g} CPUs asked, {cores} here" if cores and most > cores else ""
        yield Finding(
            "TP008",
            tuple(op.id for op in ops),
            f"{len(ops)} op(s) ask for num_cpus/num_gpus/custom_resources, which the {where} "
            f"backend ignores: they run on this machine's workers like any op{beyond}",
            "run them with --backend ray (a cluster that has what they ask), or drop the requests",
        )


def lint(plan: Plan) -> list[Finding]:
    """Every finding in ``plan``, errors first, then by rule and op."""
    graph = build_graph(plan)
    anc = _ancestors(plan)
    findings = [
        *_conflicts(plan, graph, anc),
        *_rate_limits(plan),
        *_shared_checkouts(plan, anc),
        *_unprovided_isolation(plan),
        *_detached(plan),
        *_sync_on_async(plan),
        *_fan_out(plan, graph),
        *_requests(plan),
    ]
    return sorted(findings, key=lambda f: (f.severity != "error", f.rule, f.ops))


def refusals(plan: Plan) -> Sequence[Finding]:
    """The findings the scheduler refuses to run with (see the module docstring)."""
    return [*_unprovided_isolation(plan), *_detached(plan)]


def refuse_unsafe(plan: Plan) -> None:
    """Raise :class:`PlanError` with the rule id when ``plan`` cannot be made safe to run."""
    refuse(plan.source, refusals(plan))


def refuse(source: str, found: Sequence[Finding]) -> None:
    """Raise :class:`PlanError` for the first of ``found``: its rule id, what, and the fix."""
    if found:
        first = found[0]
        raise PlanError(f"{source}: refused, {first.line()}; fix: {first.fix}")
