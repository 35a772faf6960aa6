"""The plan a swarm runs: one ``agent`` op per agent, where it works, what it may change.

An agent in its own worktree works on a copy nobody else touches. An agent that works in the
swarm's checkout itself (``isolation = "none"``, or ``read_only``) carries that checkout as its
``repo`` with ``isolation = "none"``: the graph then orders those that change it one after the
other, exactly as in a plan (TP004), while those that only read it run together.

:func:`draft_plan` is that plan before the worktrees exist, for what needs no worktree: the
budget check and ``truepar lint AGENTS.toml`` (:func:`lint_swarm`).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path

from truepar.agents.swarm_config import AgentSpec, Swarm
from truepar.errors import PlanError
from truepar.plan.load import parse_plan_text, read_plan_text
from truepar.plan.models import Defaults, Plan
from truepar.preflight.lint import Finding, detached_in, lint
from truepar.tools.agent import AgentOp

#: Top-level tables that make a TOML file an ``AGENTS.toml`` rather than a plan.
_SWARM_TABLES = frozenset({"swarm", "template", "task", "agent"})


def build_plan(
    swarm: Swarm,
    root: Path,
    cwd: Mapping[str, Path],
    sessions: Path,
    *,
    in_place: Collection[str],
    shares: Mapping[str, Mapping[str, float]] | None = None,
) -> Plan:
    """The agents as ops under ``root``, each in ``cwd[name]``; those in ``in_place`` work in
    the swarm's checkout itself."""
    s = swarm.settings
    in_place = frozenset(in_place)
    ops = []
    for a in swarm.agents:
        env = {
            **a.env,
            "TRUEPAR_AGENT": a.name,
            "TRUEPAR_SESSION_META": str(sessions / f".session-{a.name}.meta.json"),
        }
        checkout: dict[str, object] = {}
        if swarm.repo is not None and a.name in in_place:
            checkout = {
                "repo": os.path.relpath(swarm.repo, root),
                "isolation": "none",
                "read_only": s.read_only or a.read_only,
            }
        ops.append(
            AgentOp(
                id=a.name,
                argv=a.argv,
                prompt=a.prompt,
                prompt_via=a.prompt_via,
                cwd=os.path.relpath(cwd[a.name], root),
                env=env,
                timeout=a.timeout,
                resource=a.resource,
                cost=a.cost,
                tokens=a.tokens,
                tags=a.tags,
                check=True,
                budget_share=dict((shares or {}).get(a.name) or {}),
                **checkout,
            )
        )
    return Plan(
        name=s.name,
        ops=ops,
        resources=swarm.resources,
        defaults=Defaults(backend=s.backend, workers=s.workers, root=str(root)),
        source=str(swarm.source),
        base_dir=root,
    )


def common_root(paths: list[Path]) -> Path:
    return Path(os.path.commonpath([str(p.resolve()) for p in paths]))


def home(swarm: Swarm) -> Path:
    """Where an agent without a worktree works: the checkout, else the swarm file's folder."""
    return swarm.repo if swarm.repo is not None else swarm.base_dir


def gets_worktree(swarm: Swarm, agent: AgentSpec) -> bool:
    """Whether ``run_swarm`` gives ``agent`` a worktree of its own (when the budget lets it run):
    every agent that writes, in a swarm that uses worktrees. The others work in :func:`home`."""
    return swarm.uses_worktrees and not agent.read_only


def draft_plan(swarm: Swarm, sessions: Path | None = None) -> Plan:
    """The swarm's plan with every agent in :func:`home` (no worktree exists yet), each marked
    as working in place or not as it will be."""
    where = home(swarm)
    in_place = [a.name for a in swarm.agents if not gets_worktree(swarm, a)]
    return build_plan(
        swarm,
        common_root([where, swarm.base_dir]),
        {a.name: where for a in swarm.agents},
        sessions if sessions is not None else swarm.base_dir / swarm.settings.sessions,
        in_place=in_place,
    )


def lint_swarm(swarm: Swarm) -> list[Finding]:
    """:func:`~truepar.preflight.lint.lint` of the swarm's plan, and TP005 for its repository."""
    found = lint(draft_plan(swarm))
    if swarm.repo is not None and not any(f.rule == "TP005" for f in found):
        found += detached_in(swarm.repo, tuple(a.name for a in swarm.agents))
    return sorted(found, key=lambda f: (f.severity != "error", f.rule, f.ops))


def is_swarm_file(path: Path) -> bool:
    """A TOML file with ``[swarm]``, ``[template]``, ``[[task]]`` or ``[[agent]]`` and no ops."""
    if path.suffix.lower() != ".toml":
        return False
    try:
        raw = parse_plan_text(read_plan_text(path), path)
    except PlanError:
        return False  # the plan loader says what is wrong with it
    return "op" not in raw and bool(_SWARM_TABLES & raw.keys())
